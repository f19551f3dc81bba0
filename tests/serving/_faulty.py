"""A hostile Open Inference Protocol (V2) server for tests: it trickles, stalls, drops,
floods or nests its answers on demand.

`FaultyServer` is a small threaded raw-socket HTTP/1.1 server on ``127.0.0.1`` (a free
port). Normally it answers like a V2 server with one model of any name:

- ``GET /v2/health/ready`` and ``GET /v2/models/{name}[/versions/{v}]/ready``: 200;
- ``GET /v2/models/{name}[/versions/{v}]``: metadata (no declared inputs);
- ``POST /v2/models/{name}[/versions/{v}]/infer``: the input tensors echoed back as outputs
  (the first one named ``"out"``), ``model_version`` the version asked for (else ``"1"``);
- ``POST /v2/repository/models/{name}/load`` and ``/unload``: 200 ``{}``;
- ``POST /v2/repository/index``: each model asked about so far, in each of ``versions``
  (default ``("1",)``), READY;
- any other ``POST`` (``/predict``): ``{"predictions": <the body's "inputs">}``, for
  `RestEndpoint`.

Faults are chosen at run time with `FaultyServer.fault`, for every request or only for one
model (and version) and some kinds of request (``on=("infer",)``):

- ``"ok"``: answer normally (clears a fault);
- ``"trickle"``: the whole answer (status line, headers, body) sent one byte every
  ``s_per_byte`` seconds (0.05);
- ``"stall"``: read the request, then send the status line and headers (``headers=True``,
  the default) or nothing at all (``headers=False``), and never the body;
- ``"drop"``: read the request and close the connection without answering;
- ``"flood"``: an endless body: ``framing="length"`` (the default) announces a huge
  ``Content-Length``, ``"chunked"`` streams endless chunks, ``"close"`` sends no length
  and never closes; ``pause_s`` (0) is a pause between blocks of 64 KiB, to flood slowly;
- ``"nested"``: a body of ``depth`` (100,000) nested JSON arrays, ``[[[[...``, with
  ``status`` 200 (or a 5xx to test the error path).

Every request is recorded in `FaultyServer.requests` (method, path, headers with
lower-case names, body; `FaultyServer.headers_of` filters them by kind) and
`FaultyServer.n_connections` counts the connections accepted. The server is a context
manager: on exit it stops accepting, closes every socket and joins every thread it
started (`FaultyServer.threads` lists the live ones; a handler blocked on a slow client
ends within ~0.1 s).

>>> with FaultyServer() as server:
...     server.fault("stall", model="m", on=("infer",))
...     server.url.startswith("http://127.0.0.1:")
True
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Collection
from typing import Any, NamedTuple

__all__ = ["KINDS", "MODES", "FaultyServer", "Recorded"]

MODES = ("ok", "trickle", "stall", "drop", "flood", "nested")
#: The kinds of request a fault can be limited to (``on=``).
KINDS = ("health", "ready", "metadata", "infer", "load", "unload", "index", "other")
_TICK = 0.05  # how often blocked threads look at the stop flag
_MAX_HEAD = 65536
_OPTIONS: dict[str, dict[str, Any]] = {
    "ok": {},
    "trickle": {"s_per_byte": 0.05},
    "stall": {"headers": True},
    "drop": {},
    "flood": {"framing": "length", "pause_s": 0.0},
    "nested": {"depth": 100_000, "status": 200},
}


class Recorded(NamedTuple):
    """One request the server read."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class _Fault(NamedTuple):
    mode: str
    options: dict[str, Any]
    on: frozenset[str] | None


def _route(path: str) -> tuple[str, str | None, str | None]:
    """(kind, model, version) of a request path."""
    parts = [p for p in path.split("?", 1)[0].split("/") if p]
    if parts[:3] == ["v2", "health", "ready"]:
        return "health", None, None
    if parts[:3] == ["v2", "repository", "index"]:
        return "index", None, None
    if parts[:3] == ["v2", "repository", "models"] and len(parts) == 5:
        return parts[4] if parts[4] in ("load", "unload") else "other", parts[3], None
    if parts[:2] == ["v2", "models"] and len(parts) >= 3:
        model, rest = parts[2], parts[3:]
        version = None
        if rest[:1] == ["versions"] and len(rest) >= 2:
            version, rest = rest[1], rest[2:]
        if not rest:
            return "metadata", model, version
        if rest in (["ready"], ["infer"]):
            return rest[0], model, version
    return "other", None, None


class FaultyServer:
    """The fault server (see the module docstring).

    Args:
        mode: the fault for every request at start (``"ok"``).
        versions: the versions the repository index and the metadata list.
        models: models the repository index lists from the start.
        options: that fault's options (``s_per_byte=``, ``headers=``, ``framing=``,
            ``depth=``, ``status=``).
    """

    def __init__(
        self,
        mode: str = "ok",
        *,
        versions: tuple[str, ...] = ("1",),
        models: tuple[str, ...] = (),
        **options: Any,
    ) -> None:
        self.versions = versions
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._faults: dict[tuple[str | None, str | None], _Fault] = {}
        self._threads: list[threading.Thread] = []
        self._sockets: set[socket.socket] = set()
        self._models: list[str] = list(models)
        self.requests: list[Recorded] = []
        self.n_connections = 0
        self.fault(mode, **options)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(_TICK)
        self.port: int = self._listener.getsockname()[1]

    @property
    def url(self) -> str:
        """``http://127.0.0.1:{port}``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def threads(self) -> list[threading.Thread]:
        """The server's threads still alive."""
        with self._lock:
            return [t for t in self._threads if t.is_alive()]

    def fault(
        self,
        mode: str,
        *,
        model: str | None = None,
        version: str | None = None,
        on: Collection[str] | None = None,
        **options: Any,
    ) -> None:
        """Answer requests for ``model`` (and ``version``; None: all) with ``mode``.

        ``on`` limits the fault to those kinds of request (see `KINDS`); the most specific
        fault set applies: model and version, then model, then every request.
        """
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r} (modes: {', '.join(MODES)})")
        unknown = set(options) - set(_OPTIONS[mode])
        if unknown:
            raise ValueError(f"mode {mode!r} takes no option {sorted(unknown)}")
        if on is not None and not set(on) <= set(KINDS):
            raise ValueError(f"'on' must name kinds of request among {KINDS} (got {on!r})")
        fault = _Fault(mode, {**_OPTIONS[mode], **options}, None if on is None else frozenset(on))
        with self._lock:
            self._faults[(model, version)] = fault

    def clear(self) -> None:
        """Answer every request normally again."""
        with self._lock:
            self._faults = {(None, None): _Fault("ok", {}, None)}

    def headers_of(self, kind: str = "infer") -> list[dict[str, str]]:
        """The headers of every recorded request of ``kind``."""
        with self._lock:
            return [r.headers for r in self.requests if _route(r.path)[0] == kind]

    # --------------------------------------------------------------- lifetime

    def __enter__(self) -> FaultyServer:
        self._start(self._accept, "faulty-accept")
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop: close every socket and join every thread."""
        self._stop.set()
        with self._lock:
            sockets = [*list(self._sockets), self._listener]
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        for thread in list(self._threads):
            if thread is not threading.current_thread():
                thread.join(5.0)

    def _start(self, target: Any, name: str, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        n = 0
        while not self._stop.is_set():
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            sock.settimeout(_TICK)
            with self._lock:
                if self._stop.is_set():
                    sock.close()
                    return
                self._sockets.add(sock)
            n += 1
            self.n_connections = n
            self._start(self._serve, f"faulty-conn-{n}", sock)

    # ------------------------------------------------------------ connections

    def _serve(self, sock: socket.socket) -> None:
        buffer = b""
        try:
            while not self._stop.is_set():
                request, buffer = self._read_request(sock, buffer)
                if request is None:
                    return
                if not self._answer(sock, request):
                    return
        except OSError:
            return
        finally:
            with self._lock:
                self._sockets.discard(sock)
            sock.close()

    def _recv(self, sock: socket.socket) -> bytes | None:
        """Some bytes, b"" when the peer closed, None when stopping."""
        while not self._stop.is_set():
            try:
                return sock.recv(65536)
            except TimeoutError:
                continue
        return None

    def _read_request(self, sock: socket.socket, buffer: bytes) -> tuple[Recorded | None, bytes]:
        while b"\r\n\r\n" not in buffer:
            if len(buffer) > _MAX_HEAD:
                return None, b""
            data = self._recv(sock)
            if not data:
                return None, b""
            buffer += data
        head, buffer = buffer.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        method, path, _ = ([*lines[0].split(" "), "", ""])[:3]
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0") or 0)
        while len(buffer) < length:
            data = self._recv(sock)
            if not data:
                return None, b""
            buffer += data
        request = Recorded(method, path, headers, buffer[:length])
        with self._lock:
            self.requests.append(request)
        return request, buffer[length:]

    def _fault_for(self, kind: str, model: str | None, version: str | None) -> _Fault:
        with self._lock:
            for key in ((model, version), (model, None), (None, None)):
                fault = self._faults.get(key)
                if fault is not None and (fault.on is None or kind in fault.on):
                    return fault
        return _Fault("ok", {}, None)

    def _answer(self, sock: socket.socket, request: Recorded) -> bool:
        """Answer ``request`` (with its fault); False when the connection must end."""
        kind, model, version = _route(request.path)
        if model is not None:
            with self._lock:
                if model not in self._models:
                    self._models.append(model)
        fault = self._fault_for(kind, model, version)
        options = fault.options
        if fault.mode == "drop":
            return False
        if fault.mode == "nested":
            body = b"[" * int(options["depth"])
            self._send_all(sock, _head(int(options["status"]), len(body)) + body)
            return True
        if fault.mode == "flood":
            self._flood(sock, str(options["framing"]), float(options["pause_s"]))
            return False
        status, payload = self._normal(request, kind, model, version)
        body = json.dumps(payload).encode()
        message = _head(status, len(body)) + body
        if fault.mode == "stall":
            if options["headers"]:
                self._send_all(sock, _head(status, len(body)))
            self._wait_closed(sock)
            return False
        if fault.mode == "trickle":
            for i in range(len(message)):
                if self._stop.wait(float(options["s_per_byte"])):
                    return False
                self._send_all(sock, message[i : i + 1])
            return True
        self._send_all(sock, message)
        return True

    def _normal(
        self, request: Recorded, kind: str, model: str | None, version: str | None
    ) -> tuple[int, Any]:
        if kind in ("health", "ready", "load", "unload"):
            return 200, {} if kind in ("load", "unload") else {"ready": True}
        if kind == "metadata":
            meta = {"name": model, "versions": list(self.versions), "platform": "faulty"}
            return 200, {**meta, "inputs": []}
        if kind == "index":
            with self._lock:
                models = list(self._models)
            return 200, [
                {"name": m, "version": v, "state": "READY"} for m in models for v in self.versions
            ]
        try:
            given = json.loads(request.body or b"null")
        except ValueError:
            return 400, {"error": "the request body is not JSON"}
        if kind == "infer":
            tensors = given.get("inputs", []) if isinstance(given, dict) else []
            outputs = [
                {**t, "name": "out" if i == 0 else t.get("name")} for i, t in enumerate(tensors)
            ]
            return 200, {
                "id": given.get("id") if isinstance(given, dict) else None,
                "model_name": model,
                "model_version": version or "1",
                "outputs": outputs,
            }
        if request.method == "POST":
            inputs = given.get("inputs") if isinstance(given, dict) else None
            return 200, {"predictions": inputs}
        return 404, {"error": f"no route {request.method} {request.path}"}

    # ---------------------------------------------------------------- sending

    def _send_all(self, sock: socket.socket, data: bytes) -> None:
        """Send ``data``; OSError when the client went away; stops quietly when stopping."""
        view = memoryview(data)
        while view and not self._stop.is_set():
            try:
                sent = sock.send(view)
            except TimeoutError:
                continue
            view = view[sent:]

    def _wait_closed(self, sock: socket.socket) -> None:
        """Wait until the client closes (or the server stops), ignoring what it sends."""
        while self._recv(sock):
            pass

    def _flood(self, sock: socket.socket, framing: str, pause_s: float) -> None:
        head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        if framing == "length":
            head += f"Content-Length: {10**15}\r\n"
        elif framing == "chunked":
            head += "Transfer-Encoding: chunked\r\n"
        elif framing == "close":
            head += "Connection: close\r\n"
        else:
            raise ValueError(f"unknown framing {framing!r} (length, chunked or close)")
        self._send_all(sock, (head + "\r\n").encode())
        block = b"0" * 65536
        piece = b"%x\r\n%s\r\n" % (len(block), block) if framing == "chunked" else block
        while not self._stop.wait(pause_s):
            self._send_all(sock, piece)


def _head(status: int, length: int) -> bytes:
    reason = {200: "OK", 404: "Not Found", 400: "Bad Request"}.get(status, "Error")
    return (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()
