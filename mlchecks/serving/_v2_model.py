"""What the V2 clients share, whatever their transport: one model, its settings, and the
inputs its metadata declares.

`V2Endpoint` (HTTP) and `V2GrpcEndpoint` (gRPC) both derive from `V2Model`: it checks the
model's settings once (`_init_model`), remembers the inputs the model declares
(`_remember_inputs`), and names and casts request inputs from them (`named_inputs`); the
subclasses move the bytes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any

import numpy as np
from typing_extensions import Self

from mlchecks._deadline import Deadline
from mlchecks._validate import check_non_empty_string, describe
from mlchecks.exceptions import InvalidInput
from mlchecks.serving._http import Headers, check_seconds
from mlchecks.serving._v2_codec import NUMPY_DTYPES, datatype_of
from mlchecks.serving._v2_repository import V2Repository

__all__ = ["DEFAULT_INPUT_NAME", "V2Model"]

#: The input tensor's name when neither ``input_name`` nor the model's metadata gives one.
DEFAULT_INPUT_NAME = "input-0"


def _as_declared(value: Any, datatype: str | None, shape: Sequence[int] | None = None) -> Any:
    """``value`` cast to the numeric ``datatype`` the model declares (unchanged if None).

    With the declared ``shape``: one row given without the batch axis the model declares
    (``(30,)`` for ``[-1, 30]``, as Triton declares a batching model) gets it, ``(1, 30)``.
    """
    if (datatype is None and shape is None) or isinstance(value, Mapping):
        return value
    try:
        array = np.asarray(value)
    except (TypeError, ValueError):
        return value  # encode_tensor says what is wrong
    if shape is not None and _lacks_batch_axis(array.shape, shape):
        array = array[np.newaxis]
    if datatype is None or array.dtype.kind not in "biuf" or datatype_of(array) == datatype:
        return array
    return array.astype(NUMPY_DTYPES[datatype])


def _lacks_batch_axis(given: tuple[int, ...], declared: Sequence[int]) -> bool:
    """``given`` is one row of the declared shape: ``declared`` is ``[-1, *given]`` (-1 in
    ``given``'s places matches any size)."""
    if len(declared) != len(given) + 1 or declared[0] != -1:
        return False
    return all(d in (-1, g) for d, g in zip(declared[1:], given, strict=True))


class V2Model(V2Repository):
    """One model on a V2 server, over some transport (see the module docstring)."""

    _transport: Any

    def _init_model(
        self,
        transport: Any,
        model: str,
        *,
        load_timeout_s: float,
        input_name: str | None,
        outputs: Sequence[str] | None,
        output: str | None,
        parameters: Mapping[str, Any] | None,
    ) -> None:
        """Check the model's settings and keep them, with ``transport`` (its ``url``,
        ``timeout_s``, ``headers`` and ``close()``)."""
        check_non_empty_string(model, "model")
        if input_name is not None:
            check_non_empty_string(input_name, "input_name")
        if outputs is not None:
            if isinstance(outputs, str) or not all(isinstance(o, str) and o for o in outputs):
                raise InvalidInput(
                    f"'outputs' must be a sequence of output names or None (got {outputs!r})"
                )
            outputs = tuple(outputs)
        if output is not None and (not isinstance(output, str) or not output):
            raise InvalidInput(f"'output' must be a non-empty string or None (got {output!r})")
        if parameters is not None and not isinstance(parameters, Mapping):
            raise InvalidInput(
                f"'parameters' must be a mapping or None (got {describe(parameters)})"
            )
        self._transport = transport
        self.url: str = transport.url
        self.model = model
        self.timeout_s: float = transport.timeout_s
        self.load_timeout_s = check_seconds(load_timeout_s, "load_timeout_s")
        self.input_name = input_name
        # The inputs the model's metadata declares, name -> datatype (None: not asked yet),
        # and their declared shapes (-1: any size).
        self._declared: dict[str, str | None] | None = None
        self._shapes: dict[str, tuple[int, ...]] = {}
        self.outputs: tuple[str, ...] | None = outputs
        self.output = output
        self.parameters: dict[str, Any] | None = None if parameters is None else dict(parameters)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r}, {self.model!r})"

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connections (of all threads); later requests reconnect."""
        self._transport.close()

    def _bounded(self, seconds: float, name: str) -> AbstractContextManager[Deadline]:
        """A block whose calls (of this thread) all end within ``seconds`` from now."""
        bounded: AbstractContextManager[Deadline] = self._transport.bounded(seconds, name)
        return bounded

    @property
    def headers(self) -> Headers | None:
        """The extra headers (HTTP headers, gRPC metadata) sent with every request, or the
        callable making them."""
        headers: Headers | None = self._transport.headers
        return headers

    def declared_inputs(self) -> dict[str, str | None]:
        raise NotImplementedError

    def _remember_inputs(self, items: Iterable[Mapping[str, Any]]) -> dict[str, str | None]:
        """Keep the inputs a metadata answer declares (``name``, ``datatype``, ``shape``
        each); returns name -> datatype (None for BYTES and unknown datatypes)."""
        declared: dict[str, str | None] = {}
        shapes: dict[str, tuple[int, ...]] = {}
        try:
            for item in items:
                name, datatype = str(item["name"]), item.get("datatype")
                usable = datatype in NUMPY_DTYPES and datatype != "BYTES"
                declared[name] = datatype if usable else None
                if isinstance(item.get("shape"), list | tuple):
                    shapes[name] = tuple(int(d) for d in item["shape"])
        except (ValueError, AttributeError, KeyError, TypeError):
            declared, shapes = {}, {}
        self._declared, self._shapes = declared, shapes
        return declared

    def named_inputs(self, inputs: Any) -> dict[str, Any]:
        """``inputs`` as input name -> value: a mapping as given, else under ``input_name``,
        or the one input the model declares (cast to its datatype, with its batch axis
        when one row comes without it), or ``DEFAULT_INPUT_NAME``.

        Raises:
            InvalidInput: an empty mapping, or a single array for a model declaring several
                inputs.
        """
        declared = self.declared_inputs() if self.input_name is None else {}
        if isinstance(inputs, Mapping):
            if not inputs:
                raise InvalidInput("'inputs' must name at least one tensor (got {})")
            named = {str(name): value for name, value in inputs.items()}
        elif self.input_name is not None:
            named = {self.input_name: inputs}
        elif len(declared) > 1:
            raise InvalidInput(
                f"model {self.model!r} declares {len(declared)} inputs "
                f"({', '.join(declared)}): pass a mapping name -> array, or input_name="
            )
        else:
            named = {next(iter(declared), DEFAULT_INPUT_NAME): inputs}
        return {
            name: _as_declared(value, declared.get(name), self._shapes.get(name))
            for name, value in named.items()
        }

    def pick_output(self, decoded: Mapping[str, Any]) -> Any:
        """The answer's outputs: the tensor ``output`` names, the only tensor, or all of them
        as a dict.

        Raises:
            ValueError: ``output`` names no tensor of the answer (the message lists them).
        """
        if self.output is not None:
            if self.output not in decoded:
                raise ValueError(
                    f"no output tensor named {self.output!r} (got {', '.join(decoded)})"
                )
            return decoded[self.output]
        if len(decoded) == 1:
            return next(iter(decoded.values()))
        return dict(decoded)
