"""The wire format of the Open Inference Protocol (V2), JSON/REST binding.

Tensors: `datatype_of`, `encode_tensor` and `decode_tensor` turn numpy arrays into V2
tensors (``name``, ``shape``, ``datatype``, flat ``data``) and back. Errors: `V2Error` (a
management call failed), `Failure` (a request got no usable HTTP answer) and the helpers
that read a server's error answer. Public names are re-exported by `mlchecks.serving.v2`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np

from mlchecks._json import loads
from mlchecks._validate import describe
from mlchecks.exceptions import InvalidInput, MLChecksError
from mlchecks.protocols import Response

__all__ = [
    "failed_response",
    "status_response",
    "NUMPY_DTYPES",
    "Failure",
    "V2Error",
    "datatype_of",
    "decode_tensor",
    "encode_tensor",
    "error_text",
    "http_error",
    "parse_json",
    "status_kind",
    "version_sort_key",
]

#: V2 datatype -> numpy dtype of the decoded array (BYTES decodes to an object array of str).
NUMPY_DTYPES: dict[str, np.dtype[Any]] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype(np.uint8),
    "UINT16": np.dtype(np.uint16),
    "UINT32": np.dtype(np.uint32),
    "UINT64": np.dtype(np.uint64),
    "INT8": np.dtype(np.int8),
    "INT16": np.dtype(np.int16),
    "INT32": np.dtype(np.int32),
    "INT64": np.dtype(np.int64),
    "FP16": np.dtype(np.float16),
    "FP32": np.dtype(np.float32),
    "FP64": np.dtype(np.float64),
    "BYTES": np.dtype(object),
}
# numpy dtype (kind, itemsize) -> V2 datatype, for the numeric types.
_DATATYPES: dict[tuple[str, int], str] = {
    (dtype.kind, dtype.itemsize): name for name, dtype in NUMPY_DTYPES.items() if name != "BYTES"
}
_ERROR_TEXT_LIMIT = 300


class V2Error(MLChecksError, RuntimeError):
    """A model repository or metadata call to a V2 server failed.

    ``infer`` never raises it (a failed request is a `Response` with ``error`` set); the
    management calls (``load``, ``unload``, ``versions``, ``metadata``) do.

    Attributes:
        kind: ``"client"`` (4xx), ``"server"`` (5xx or a malformed answer), ``"timeout"``,
            ``"connection"`` or ``"unsupported"`` (the protocol cannot do what was asked).
        status: the HTTP status, or None when no answer arrived.

    >>> error = V2Error("HTTP 404: Model iris not found", kind="client", status=404)
    >>> error.kind, error.status, isinstance(error, RuntimeError)
    ('client', 404, True)
    """

    def __init__(self, message: str, *, kind: str, status: int | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.status = status


class Failure(Exception):
    """A request that got no usable HTTP answer (internal; becomes a Response or V2Error)."""

    def __init__(self, kind: str, message: str, *, n_retries: int = 0) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.n_retries = n_retries


# ------------------------------------------------------------------------ tensor coding


def datatype_of(array: np.ndarray) -> str:
    """The V2 datatype that carries ``array``'s dtype (``"FP32"``, ``"INT64"``, ``"BYTES"``...).

    Strings, bytes and object arrays of them travel as ``BYTES``.

    Raises:
        InvalidInput: the dtype has no V2 datatype (complex, datetime, structured).

    >>> datatype_of(np.zeros(3, dtype=np.float32)), datatype_of(np.array([True]))
    ('FP32', 'BOOL')
    >>> datatype_of(np.array(["a", "b"]))
    'BYTES'
    """
    dtype = array.dtype
    if dtype.kind in "USO":
        return "BYTES"
    name = _DATATYPES.get((dtype.kind, dtype.itemsize))
    if name is None:
        supported = ", ".join(NUMPY_DTYPES)
        raise InvalidInput(
            f"'inputs' has dtype {dtype} that the V2 protocol cannot carry "
            f"(supported: {supported}; strings travel as BYTES)"
        )
    return name


def _bytes_element(value: Any) -> str:
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidInput(
                f"'inputs' has a bytes element that is not UTF-8 text ({value[:20]!r}...); "
                "the JSON binding of the V2 protocol carries BYTES as text"
            ) from None
    if isinstance(value, str):
        return value
    raise InvalidInput(
        f"'inputs' has an element {describe(value)} in an object array; "
        "object arrays must hold str or bytes (sent as BYTES)"
    )


def encode_tensor(name: str, value: Any) -> dict[str, Any]:
    """One V2 input tensor (``name``, ``shape``, ``datatype``, flat ``data``) for ``value``.

    Args:
        name: the tensor's name.
        value: an array-like; its numpy dtype picks the datatype (see `datatype_of`).

    Raises:
        InvalidInput: ``value`` is not array-like or its dtype cannot be sent.

    >>> encode_tensor("x", np.array([[1, 2], [3, 4]], dtype=np.int32))
    {'name': 'x', 'shape': [2, 2], 'datatype': 'INT32', 'data': [1, 2, 3, 4]}
    """
    try:
        array = np.asarray(value)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"'inputs' must be array-like (got {describe(value)}): {exc}") from None
    datatype = datatype_of(array)
    flat = array.reshape(-1)
    if datatype == "BYTES":
        data: list[Any] = [_bytes_element(v) for v in flat.tolist()]
    else:
        data = flat.tolist()
    return {"name": name, "shape": list(array.shape), "datatype": datatype, "data": data}


def decode_tensor(tensor: Mapping[str, Any]) -> np.ndarray:
    """The numpy array a V2 output tensor carries, with its shape and datatype.

    ``data`` may be flat or nested (both are valid in the protocol). ``BYTES`` decode to an
    object array of ``str``.

    Raises:
        ValueError: the tensor is malformed (unknown datatype, data not matching shape).

    >>> decode_tensor({"name": "p", "shape": [2, 1], "datatype": "FP32", "data": [0.5, 1.5]})
    array([[0.5],
           [1.5]], dtype=float32)
    """
    try:
        datatype = tensor["datatype"]
        shape = [int(s) for s in tensor["shape"]]
        data = tensor["data"]
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"malformed output tensor (missing or bad field {exc})") from None
    dtype = NUMPY_DTYPES.get(datatype)
    if dtype is None:
        raise ValueError(f"output tensor {tensor.get('name')!r} has unknown datatype {datatype!r}")
    try:
        array = np.array(data, dtype=dtype)
        return array.reshape(shape)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ValueError(
            f"output tensor {tensor.get('name')!r} ({datatype}, shape {shape}) "
            f"does not match its data: {exc}"
        ) from None


def parse_json(data: bytes | str) -> Any:
    """The decoded JSON ``data``; `ValueError` for anything that is not JSON Python can
    decode, including JSON nested too deeply (which `json.loads` meets with
    `RecursionError`).

    >>> parse_json(b'{"a": [1]}')
    {'a': [1]}
    >>> parse_json("[" * 100_000)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ValueError: the answer is not valid JSON: nested deeper than ... levels
    """
    return loads(data, "the answer")


def error_text(body: bytes) -> str:
    """The message of an error answer: ``{"error": ...}``, a framework's detail, or the text."""
    text = body.decode("utf-8", "replace").strip()
    try:
        payload = parse_json(text)
    except ValueError:
        payload = None
    if isinstance(payload, Mapping):
        for key in ("error", "detail", "message"):
            if key in payload:
                detail = payload[key]
                text = detail if isinstance(detail, str) else json.dumps(detail)
                break
    if len(text) > _ERROR_TEXT_LIMIT:
        text = text[: _ERROR_TEXT_LIMIT - 3] + "..."
    return text or "(empty body)"


def status_kind(status: int) -> str:
    if status in (408, 504):
        return "timeout"
    return "client" if 400 <= status < 500 else "server"


def http_error(what: str, status: int, data: bytes) -> V2Error:
    """The `V2Error` for an error answer: ``{what}: HTTP {status}: {the server's message}``."""
    return V2Error(
        f"{what}: HTTP {status}: {error_text(data)}", kind=status_kind(status), status=status
    )


def version_sort_key(version: str) -> tuple[int, int, str]:
    """Numeric versions in numeric order, then the others in text order."""
    try:
        return (0, int(version), "")
    except ValueError:
        return (1, 0, version)


def failed_response(failure: Failure, latency_s: float, request_id: str | None) -> Response:
    """The `Response` of a request that got no HTTP answer (`Failure`: its kind, message
    and the retries spent)."""
    return Response(
        latency_s=latency_s,
        error=failure.message,
        error_kind=failure.kind,
        n_retries=failure.n_retries,
        request_id=request_id,
    )


def status_response(
    status: int, data: bytes, *, latency_s: float, n_retries: int, request_id: str | None
) -> Response:
    """The `Response` of an HTTP answer outside 2xx: ``HTTP {status}: {text}``, its kind
    from the status (`status_kind`)."""
    return Response(
        latency_s=latency_s,
        error=f"HTTP {status}: {error_text(data)}",
        error_kind=status_kind(status),
        n_retries=n_retries,
        request_id=request_id,
    )
