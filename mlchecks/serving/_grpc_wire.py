"""The gRPC binding of the Open Inference Protocol: message classes and tensor coding.

Stubs. The protocol is declared in ``proto/open_inference.proto`` (written from the public
specification). At first use, `protocol()` compiles it with the ``protoc`` that
``grpcio-tools`` ships into a descriptor set, builds the message classes in a descriptor
pool of its own and returns them with the service's method paths; `Protocol.stubs` binds
the methods to a channel. Nothing generated is committed, and the private pool never
clashes with another copy of the same ``inference`` package in the process (tritonclient
and MLServer each register one in protobuf's default pool, and cannot even be imported
together).

Tensors. `add_input` writes one input tensor into a ``ModelInferRequest``, as typed
``contents`` or as ``raw_input_contents`` (little-endian bytes; a BYTES element is its
4-byte little-endian length and its bytes); `decode_outputs` reads the output tensors of a
``ModelInferResponse`` from either form. Datatypes follow the JSON binding's rules
(`mlchecks.serving._v2_codec.datatype_of`), and outputs decode to the same numpy arrays.
"""

from __future__ import annotations

import struct
import tempfile
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from mlchecks._validate import describe
from mlchecks.exceptions import InvalidInput, MissingDependency
from mlchecks.serving._v2_codec import NUMPY_DTYPES, datatype_of

__all__ = [
    "PROTO",
    "SERVICE",
    "Protocol",
    "add_input",
    "decode_outputs",
    "needs_raw",
    "protocol",
    "require_grpc",
    "set_parameter",
]

#: The protocol's declaration, compiled at first use.
PROTO = Path(__file__).resolve().parent / "proto" / "open_inference.proto"
#: The gRPC service every V2 server answers (Triton, MLServer, KServe).
SERVICE = "inference.GRPCInferenceService"
INSTALL = 'pip install "mlchecks-infra[grpc]"'

# The typed-contents field of each datatype (FP16 has none: it travels raw).
_CONTENTS = {
    "BOOL": "bool_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}
_LENGTH = struct.Struct("<I")


def require_grpc(who: str) -> None:
    """Import grpcio and grpcio-tools, or raise `MissingDependency` with the install command."""
    try:
        import grpc  # noqa: F401
        import grpc_tools.protoc  # noqa: F401
    except ImportError as exc:
        raise MissingDependency(f"{who} needs grpcio and grpcio-tools ({exc}); {INSTALL}") from exc


class Protocol(NamedTuple):
    """The compiled protocol: message classes by name and the service's methods."""

    messages: Mapping[str, type[Any]]
    # method name -> (path, request class, response class)
    methods: Mapping[str, tuple[str, type[Any], type[Any]]]

    def stubs(self, channel: Any) -> dict[str, Callable[..., Any]]:
        """Method name -> the unary callable on ``channel`` (a ``grpc.Channel``)."""
        return {
            name: channel.unary_unary(
                path,
                request_serializer=request.SerializeToString,
                response_deserializer=response.FromString,
            )
            for name, (path, request, response) in self.methods.items()
        }


_lock = threading.Lock()
_compiled: list[Protocol] = []


def protocol() -> Protocol:
    """The protocol's message classes and methods, compiled from `PROTO` once per process.

    Raises:
        MissingDependency: grpcio-tools is not installed.
        RuntimeError: protoc rejected the file (a broken installation).
    """
    with _lock:
        if not _compiled:
            _compiled.append(_compile())
        return _compiled[0]


def _compile() -> Protocol:
    require_grpc("the Open Inference Protocol over gRPC")
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
    from grpc_tools import protoc

    with tempfile.TemporaryDirectory(prefix="mlchecks-proto-") as tmp:
        out = Path(tmp) / "open_inference.pb"
        args = ["protoc", f"-I{PROTO.parent}", f"--descriptor_set_out={out}", PROTO.name]
        if protoc.main(args) != 0 or not out.is_file():
            raise RuntimeError(f"protoc could not compile {PROTO} (see its message above)")
        files = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
    pool = descriptor_pool.DescriptorPool()
    for file in files.file:
        pool.Add(file)
    package = pool.FindFileByName(PROTO.name)
    messages = {
        name: message_factory.GetMessageClass(descriptor)
        for name, descriptor in package.message_types_by_name.items()
    }
    service = pool.FindServiceByName(SERVICE)
    methods = {
        method.name: (
            f"/{SERVICE}/{method.name}",
            messages[method.input_type.name],
            messages[method.output_type.name],
        )
        for method in service.methods
    }
    return Protocol(messages, methods)


# ------------------------------------------------------------------------ parameters


def set_parameter(parameters: Any, key: str, value: Any) -> None:
    """Set ``parameters[key]`` (a protobuf map of ``InferParameter``) to ``value``.

    bool -> ``bool_param``, int -> ``int64_param`` (``uint64_param`` above 2**63 - 1),
    float -> ``double_param``, str -> ``string_param``.

    Raises:
        InvalidInput: ``value`` is none of these.
    """
    entry = parameters[key]
    if isinstance(value, bool | np.bool_):
        entry.bool_param = bool(value)
    elif isinstance(value, int | np.integer):
        if int(value) > 2**63 - 1:
            entry.uint64_param = int(value)
        else:
            entry.int64_param = int(value)
    elif isinstance(value, float | np.floating):
        entry.double_param = float(value)
    elif isinstance(value, str):
        entry.string_param = value
    else:
        del parameters[key]
        raise InvalidInput(
            f"'parameters' value of {key!r} must be a bool, int, float or str for gRPC "
            f"(got {describe(value)})"
        )


# --------------------------------------------------------------------------- tensors


def _element_bytes(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    raise InvalidInput(
        f"'inputs' has an element {describe(value)} in an object array; "
        "object arrays must hold str or bytes (sent as BYTES)"
    )


def _as_array(value: Any) -> tuple[np.ndarray, str]:
    try:
        array = np.asarray(value)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"'inputs' must be array-like (got {describe(value)}): {exc}") from None
    return array, datatype_of(array)


def add_input(request: Any, name: str, value: Any, *, raw: bool) -> bytes | None:
    """Append input tensor ``name`` for ``value`` to ``request`` (a ``ModelInferRequest``).

    With ``raw`` the elements are returned as bytes for ``raw_input_contents`` (the caller
    appends them, for every input or none); otherwise they go into the tensor's typed
    ``contents`` and None is returned. FP16 has no typed form: it raises with ``raw``
    false, so the caller sends the request raw.

    Raises:
        InvalidInput: ``value`` is not array-like, or its dtype cannot be sent.
    """
    array, datatype = _as_array(value)
    tensor = request.inputs.add(name=name, datatype=datatype, shape=array.shape)
    flat = array.reshape(-1)
    if datatype == "BYTES":
        elements = [_element_bytes(v) for v in flat.tolist()]
        if raw:
            return b"".join(_LENGTH.pack(len(e)) + e for e in elements)
        tensor.contents.bytes_contents.extend(elements)
        return None
    if raw:
        little = NUMPY_DTYPES[datatype].newbyteorder("<")
        return np.ascontiguousarray(flat, dtype=little).tobytes()
    field = _CONTENTS.get(datatype)
    if field is None:
        raise InvalidInput(f"input {name!r} is {datatype}, which gRPC carries only as raw bytes")
    getattr(tensor.contents, field).extend(flat.tolist())
    return None


def needs_raw(value: Any) -> bool:
    """True when ``value`` has a datatype with no typed contents (FP16)."""
    try:
        return bool(np.asarray(value).dtype == np.float16)
    except (TypeError, ValueError):
        return False


def _text(element: bytes) -> str | bytes:
    try:
        return element.decode("utf-8")
    except UnicodeDecodeError:
        return element


def _unpack_bytes(data: bytes) -> list[str | bytes]:
    elements: list[str | bytes] = []
    offset = 0
    while offset < len(data):
        if offset + _LENGTH.size > len(data):
            raise ValueError("raw BYTES contents end inside an element's length")
        (size,) = _LENGTH.unpack_from(data, offset)
        offset += _LENGTH.size
        if offset + size > len(data):
            raise ValueError("raw BYTES contents end inside an element")
        elements.append(_text(data[offset : offset + size]))
        offset += size
    return elements


def _decode(tensor: Any, raw: bytes | None) -> np.ndarray:
    datatype = tensor.datatype
    dtype = NUMPY_DTYPES.get(datatype)
    if dtype is None:
        raise ValueError(f"output tensor {tensor.name!r} has unknown datatype {datatype!r}")
    shape = [int(s) for s in tensor.shape]
    if raw is not None:
        if datatype == "BYTES":
            values = np.empty(len(elements := _unpack_bytes(raw)), dtype=object)
            values[:] = elements
        else:
            values = np.frombuffer(raw, dtype=dtype.newbyteorder("<")).astype(dtype)
    elif datatype == "BYTES":
        elements = [_text(e) for e in tensor.contents.bytes_contents]
        values = np.empty(len(elements), dtype=object)
        values[:] = elements
    elif datatype in _CONTENTS:
        values = np.array(getattr(tensor.contents, _CONTENTS[datatype]), dtype=dtype)
    else:
        raise ValueError(f"output tensor {tensor.name!r} is {datatype} without raw contents")
    try:
        return values.reshape(shape)
    except ValueError:
        raise ValueError(
            f"output tensor {tensor.name!r} ({datatype}, shape {shape}) does not match its "
            f"{values.size} elements"
        ) from None


def decode_outputs(response: Any) -> dict[str, np.ndarray]:
    """The output tensors of a ``ModelInferResponse``, name -> numpy array.

    Reads ``raw_output_contents`` when the server sent them (Triton always does; MLServer
    when the request was raw), else each tensor's typed ``contents``. BYTES decode to an
    object array of ``str`` (``bytes`` for elements that are not UTF-8 text).

    Raises:
        ValueError: the response is malformed (no outputs, unknown datatype, contents that
            do not match the shape).
    """
    tensors = list(response.outputs)
    if not tensors:
        raise ValueError("the answer has no output tensors")
    raw = list(response.raw_output_contents)
    if raw and len(raw) != len(tensors):
        raise ValueError(f"{len(raw)} raw output contents for {len(tensors)} output tensors")
    return {
        str(tensor.name): _decode(tensor, raw[i] if raw else None)
        for i, tensor in enumerate(tensors)
    }
