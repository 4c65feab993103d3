"""What stands between the network and the BentoML service: limits, contract, drain.

One ASGI middleware (:class:`RequestGuard`), mounted on the service with
``add_asgi_middleware``, does everything that must happen before BentoML reads a body:

- **415** for a content type other than JSON (a multipart body, with or without a
  boundary, never reaches a form parser);
- **413** from ``Content-Length`` before any byte is read, and while the body streams in
  (the read stops at the limit, the connection is closed); per route: a person's routes
  take ``max_person_body_bytes``, batches and raw behaviour ``max_body_bytes``;
- **413** for a batch with more than ``max_batch`` people, counted on the parsed JSON
  before a single request model is built;
- **400** from the request model; a body over ``small_body_bytes`` (64 KiB) is validated
  in a worker thread (never on the event loop, so health checks answer while it is
  parsed), at most ``max_parsing`` of them at a time per worker (memory stays bounded),
  and BentoML is handed the validated request instead of parsing it again; logged at
  INFO with field names and error types only, never the values nor a traceback;
- ``/docs.json`` completed by :func:`credit_scoring.serving.contract.complete_openapi`
  (200 schemas, every error shape, examples); ``/`` serves the Swagger UI from BentoML's
  bundled assets without BentoML's third-party tag-manager script;
- a drain on SIGTERM: ``/readyz`` answers 503 at once, responses carry
  ``Connection: close`` so keep-alive clients move on, in-flight requests finish.

:func:`bound_metric_labels` keeps the ``endpoint`` label of BentoML's HTTP metrics to the
known routes (anything else counts as ``other``), so random 404 paths cannot grow
``/metrics`` without bound.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import anyio
import pydantic

from credit_scoring.serving.contract import (
    PREVALIDATED,
    REQUEST_MODELS,
    complete_openapi,
    error_body,
    validation_error_body,
)

logger = logging.getLogger("bentoml.credit_scoring")

#: Routes where one person's data comes in (small bodies).
PERSON_ROUTES = frozenset({"/score", "/advice", "/model"})
#: Label of every path that is not a known route, in BentoML's metrics.
OTHER_PATHS = "other"
JSON_TYPES = frozenset({"application/json"})

_SWAGGER_HTML = """<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="UTF-8">
    <title>Credit scoring API</title>
    <link rel="stylesheet" type="text/css" href="./static_content/swagger-ui.css" />
    <link rel="stylesheet" type="text/css" href="./static_content/index.css" />
  </head>
  <body>
    <div id="swagger-ui"></div>
    <script src="./static_content/swagger-ui-bundle.js" charset="UTF-8"></script>
    <script src="./static_content/swagger-ui-standalone-preset.js" charset="UTF-8"></script>
    <script src="./static_content/swagger-initializer.js" charset="UTF-8"></script>
  </body>
</html>
"""


@dataclass(frozen=True)
class Limits:
    """Request limits of one worker (``serve:`` in params.yaml documents each)."""

    max_body_bytes: int = 8 * 2**20
    max_person_body_bytes: int = 64 * 2**10
    max_parsing: int = 2
    #: Bodies at most this large are validated without waiting for a parsing slot.
    small_body_bytes: int = 64 * 2**10

    def body_limit(self, path: str) -> int:
        return self.max_person_body_bytes if path in PERSON_ROUTES else self.max_body_bytes


class _TooLarge(Exception):
    pass


class _Draining:
    """Set once the worker got SIGTERM (chained before uvicorn's own handler)."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self._installed = False

    def install(self) -> None:
        if self._installed or threading.current_thread() is not threading.main_thread():
            return
        self._installed = True
        previous = signal.getsignal(signal.SIGTERM)

        def on_term(signum: int, frame: Any) -> None:
            if not self.event.is_set():
                logger.warning("SIGTERM: draining (readiness fails, in-flight requests finish)")
            self.event.set()
            if callable(previous):
                previous(signum, frame)

        signal.signal(signal.SIGTERM, on_term)

    def __bool__(self) -> bool:
        return self.event.is_set()


DRAINING = _Draining()


async def _respond(
    send: Callable, status: int, body: bytes, content_type: str, close: bool = False
) -> None:
    headers = [
        (b"content-type", content_type.encode()),
        (b"content-length", str(len(body)).encode()),
    ]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _json(send: Callable, status: int, data: Any, close: bool = False) -> None:
    await _respond(send, status, json.dumps(data).encode(), "application/json", close)


def _header(scope: dict, name: bytes) -> str | None:
    for k, v in scope.get("headers", ()):
        if k.lower() == name:
            return v.decode("latin-1")
    return None


def describe_errors(err: pydantic.ValidationError) -> str:
    """``loc: type`` of every error: field names and reasons, never the values."""
    parts = []
    for e in err.errors(include_input=False, include_context=False, include_url=False)[:20]:
        loc = ".".join(str(p) for p in e["loc"]) or "body"
        parts.append(f"{loc}: {e['type']}")
    more = err.error_count() - len(parts)
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


class RequestGuard:
    """The ASGI middleware of the module docstring."""

    def __init__(
        self,
        app: Any,
        limits: Limits | None = None,
        max_batch: Callable[[], int] | None = None,
        openapi: Callable[[], dict] | None = None,
    ) -> None:
        self.app = app
        self.limits = limits or Limits()
        self.max_batch = max_batch
        self.openapi = openapi
        self._docs_body: bytes | None = None
        self._parsing: asyncio.Semaphore | None = None

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] == "lifespan":
            DRAINING.install()
            return await self.app(scope, receive, send)
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path, method = scope["path"], scope["method"]
        if DRAINING:
            send = _closing(send)
            if path == "/readyz":
                return await _json(send, 503, error_body("draining: shutting down"), True)
        if method == "GET" and path == "/":
            return await _respond(send, 200, _SWAGGER_HTML.encode(), "text/html; charset=utf-8")
        if method == "GET" and path == "/docs.json":
            return await self._docs(scope, receive, send)
        model = REQUEST_MODELS.get(path)
        if model is None or method != "POST":
            return await self.app(scope, receive, send)
        started = False

        async def tracking(message: dict) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self._guarded(scope, receive, tracking, path, model)
        except Exception:
            # BentoML's timeout middleware would hold an exception raised before the
            # response starts for traffic.timeout seconds and log nothing: answer now.
            logger.exception("request guard failed on %s", path)
            if not started:
                await _json(send, 500, error_body("internal error; see the server log"), True)

    async def _guarded(self, scope, receive, send, path: str, model) -> None:
        ctype = (_header(scope, b"content-type") or "application/json").split(";")[0]
        if ctype.strip().lower() not in JSON_TYPES:
            logger.info("415 %s: content type %r", path, ctype[:64])
            return await _json(
                send,
                415,
                error_body(f"unsupported content type {ctype[:64]!r}; send application/json"),
                close=True,
            )
        limit = self.limits.body_limit(path)
        length = _header(scope, b"content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            logger.info("413 %s: content-length %s > %d", path, length[:20], limit)
            return await _json(send, 413, self._too_large(limit), close=True)
        try:
            body = await self._read(receive, limit)
        except _TooLarge:
            logger.info("413 %s: body over %d bytes", path, limit)
            return await _json(send, 413, self._too_large(limit), close=True)
        if body is None:  # the client went away
            return
        status, problem = await self._validate(path, model, body)
        if status != 200:
            return await _json(send, status, problem)

        # BentoML validates the body again on the event loop; it gets `{}` and the request
        # model hands back the request validated here (contract._Request), so a large body
        # is never parsed where health checks wait. Should that hand-over ever fail, `{}`
        # is refused by every route that takes input: a loud 400, never a wrong answer.
        sent = False

        async def replay() -> dict:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": b"{}", "more_body": False}
            return await receive()

        token = PREVALIDATED.set(problem)
        try:
            await self.app(scope, replay, send)
        finally:
            PREVALIDATED.reset(token)

    @staticmethod
    def _too_large(limit: int) -> dict:
        return error_body(f"request body too large: at most {limit} bytes", loc=["body"])

    @staticmethod
    async def _read(receive: Callable, limit: int) -> bytes | None:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise _TooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _validate(self, path: str, model, body: bytes) -> tuple[int, Any]:
        """(200, the request) or the error status and body; the work runs in a thread."""
        max_batch = self.max_batch() if (self.max_batch and path == "/score_batch") else None

        def check() -> tuple[int, dict, str]:
            if max_batch is not None:
                try:
                    people = json.loads(body or b"{}").get("people")
                except (ValueError, AttributeError):
                    people = None
                if isinstance(people, list) and len(people) > max_batch:
                    msg = (
                        f"people: {len(people)} people in one call; at most {max_batch} "
                        "(serve.max_batch) are accepted; split the batch"
                    )
                    return 413, error_body(msg, loc=["people"]), msg
            try:
                request = model.model_validate_json(body or b"{}")
            except pydantic.ValidationError as err:
                return 400, validation_error_body(err), describe_errors(err)
            return 200, request, ""

        if len(body) <= self.limits.small_body_bytes:
            # A person's body (at most 64 KiB) validates in well under a millisecond to a
            # few: cheaper on the loop than a hop to a thread and back.
            status, problem, log = check()
        else:
            if self._parsing is None:
                self._parsing = asyncio.Semaphore(self.limits.max_parsing)
            async with self._parsing:
                status, problem, log = await anyio.to_thread.run_sync(check)
        if status != 200:
            logger.info("%d %s: %s", status, path, log)
        return status, problem

    async def _docs(self, scope, receive, send) -> None:
        """The completed OpenAPI document, built once per worker in a thread (BentoML
        builds it on the event loop at every request: half a second of stalled probes)."""
        if self.openapi is None:
            return await self.app(scope, receive, send)
        if self._docs_body is None:
            doc = await anyio.to_thread.run_sync(self.openapi)
            self._docs_body = json.dumps(doc).encode()
        await _respond(send, 200, self._docs_body, "application/json")


def _closing(send: Callable) -> Callable:
    """``send`` that asks the client to close the connection (keep-alive ends on drain)."""

    async def wrapped(message: dict) -> None:
        if message["type"] == "http.response.start":
            headers = [h for h in message.get("headers", []) if h[0].lower() != b"connection"]
            message = {**message, "headers": [*headers, (b"connection", b"close")]}
        await send(message)

    return wrapped


# --------------------------------------------------------------------------- metrics


def bound_metric_labels(
    known: Iterable[str], prefixes: Iterable[str] = ("/static_content",)
) -> None:
    """Make BentoML's HTTP metrics label every unknown path ``other``.

    BentoML 1.4 labels its request counters and histograms with the raw request path, so
    each distinct 404 path adds series for ever (5,000 random paths grew ``/metrics`` from
    105 KB to 22.6 MB). Its metrics middleware is the outermost one and reads
    ``scope["path"]`` itself, so a service middleware cannot rename the path for it; this
    swaps in a subclass (BentoML imports the class when it builds the app, after the
    service module is loaded) that shows it the route, and the app the real path.
    """
    from bentoml._internal.server.http import instruments

    base = getattr(instruments.RunnerTrafficMetricsMiddleware, "_credit_scoring_base", None)
    base = base or instruments.RunnerTrafficMetricsMiddleware
    known_paths = frozenset(known)
    known_prefixes = tuple(prefixes)
    real = "credit_scoring.real_path"

    def label(path: str) -> str:
        if path in known_paths:
            return path
        for p in known_prefixes:
            if path.startswith(p + "/"):
                return p
        return OTHER_PATHS

    class BoundedLabels(base):  # type: ignore[misc, valid-type]
        _credit_scoring_base = base

        def __init__(self, app: Any, *args: Any, **kwargs: Any) -> None:
            async def restore(scope: dict, receive: Callable, send: Callable) -> None:
                if real in scope:
                    scope = {**scope, "path": scope[real]}
                    del scope[real]
                await app(scope, receive, send)

            super().__init__(restore, *args, **kwargs)

        async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
            if scope["type"] == "http" and label(scope["path"]) != scope["path"]:
                scope = {**scope, "path": label(scope["path"]), real: scope["path"]}
            await super().__call__(scope, receive, send)

    instruments.RunnerTrafficMetricsMiddleware = BoundedLabels  # type: ignore[misc]


# --------------------------------------------------------------------------- workers


def watch_workers() -> None:
    """In the `bentoml serve` process (circus' arbiter): log a worker's death at ERROR
    with its cause, and refuse new connections as soon as the server stops.

    Circus, which BentoML 1.4 runs its workers under, reaps and replaces a dead worker
    logging only at DEBUG, so a ``kill -9`` or an out-of-memory kill leaves no trace; and
    on SIGTERM it stops the workers first and closes the listening socket last, so new
    connections wait in the backlog (hang) until every worker has drained. Both are fixed
    through circus' watcher hooks (``after_reap``, ``before_stop``), the only seam BentoML
    leaves: a dead worker is logged with its exit code or signal; on the arbiter's stop the
    shared listening socket is shut down (Linux: further connections are refused) while
    the workers finish their in-flight requests.
    """
    try:
        from circus.watcher import Watcher
    except ImportError:  # pragma: no cover - BentoML always ships circus
        return
    if getattr(Watcher.call_hook, "_credit_scoring", False):
        return
    original = Watcher.call_hook

    def call_hook(self: Any, hook_name: str, **kwargs: Any) -> Any:
        arbiter = getattr(self, "arbiter", None)
        stopping = bool(getattr(arbiter, "_stopping", False)) or self.is_stopping()
        if hook_name == "after_reap" and not stopping and kwargs.get("exit_code"):
            code = int(kwargs["exit_code"])
            cause = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
            logger.error(
                "worker process %s of %s died (%s); a new worker is started",
                kwargs.get("process_pid"),
                self.name,
                cause,
            )
        if hook_name == "before_stop" and stopping:
            import socket

            for sock in (self.sockets or {}).values():
                try:
                    sock.shutdown(socket.SHUT_RD)
                except OSError:
                    continue
                logger.warning("stopping: listening socket closed, new connections refused")
        return original(self, hook_name, **kwargs)

    call_hook._credit_scoring = True  # type: ignore[attr-defined]
    Watcher.call_hook = call_hook  # type: ignore[method-assign]


# --------------------------------------------------------------------------- mounting


def guard(service: Any, bento_model: Any, limits: Limits | None = None) -> None:
    """Mount :class:`RequestGuard` on a BentoML service and bound its metric labels.

    ``bento_model`` (the service's ``BentoModel``) is where the served ``max_batch`` is
    read from (its serve_info.json), once, on the first batch request of a worker.
    """
    import functools
    from pathlib import Path

    from credit_scoring.serving.contract import DEFAULT_MAX_BATCH, SERVE_INFO_FILE

    @functools.cache
    def max_batch() -> int:
        info = Path(bento_model.resolve().path) / SERVE_INFO_FILE
        data = json.loads(info.read_text()) if info.is_file() else {}
        return int(data.get("max_batch", DEFAULT_MAX_BATCH))

    def openapi() -> dict:
        return complete_openapi(service.openapi_spec.asdict())

    service.add_asgi_middleware(
        RequestGuard, limits=limits or Limits(), max_batch=max_batch, openapi=openapi
    )
    routes = [api.route for api in service.apis.values()]
    system = ["/", "/docs.json", "/schema.json", "/livez", "/healthz", "/readyz", "/metrics"]
    bound_metric_labels([*routes, *system])
    watch_workers()
