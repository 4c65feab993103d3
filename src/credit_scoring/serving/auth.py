"""Who may call the service: API keys (bearer tokens) or a trusted gateway header.

Every route but the health probes (``/healthz``, ``/livez``, ``/readyz``) needs a client:
the scoring APIs, ``/model``, ``/metrics``, ``/docs.json`` and the Swagger UI alike.
:class:`AuthMiddleware` is a plain ASGI middleware mounted on the BentoML service with
``add_asgi_middleware``; it answers 401 with ``WWW-Authenticate: Bearer`` and a body that
says nothing about why, and for every admitted request sets :data:`REQUEST` (a fresh
request id, the client id and the optional ``X-Person-Ref`` header) for the audit log, and
returns the request id in the ``X-Request-ID`` response header.

Modes (``serve.auth.mode``, env ``CREDIT_SCORING_AUTH``):

- ``api_key`` (default): ``Authorization: Bearer csk_<key id>_<secret>``. The keys file
  (``serve.auth.keys_file``) holds, per key, a key id, a client id, a random salt and
  HMAC-SHA256(salt, token), never the token: ``credit-scoring api-key mint`` prints a new
  token once and stores only its hash. A token has 256 random bits, so a fast salted hash
  is as safe at rest as a slow one, and costs microseconds per request. Comparison is
  :func:`hmac.compare_digest`, and an unknown key id is compared against a dummy hash, so
  the time taken does not tell which part was wrong. With no keys the service refuses to
  start.
- ``trusted_header``: a gateway in front (an OAuth2 proxy, an mTLS ingress) authenticates
  the caller and names it in ``serve.auth.trusted_header``; the service believes that
  header, so it must only be reachable through the gateway (bind 127.0.0.1 or a network
  policy).
- ``none``: no authentication, for local development only; logged at WARNING at start.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import hashlib
import hmac
import json
import logging
import re
import secrets
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from credit_scoring.serving.serve_config import ServeConfig, ServeConfigError

logger = logging.getLogger(__name__)

#: Routes that answer without a client: the orchestrator's probes (they reveal nothing).
OPEN_PATHS = frozenset({"/healthz", "/livez", "/readyz"})
TOKEN_PREFIX = "csk"
REQUEST_ID_HEADER = "X-Request-ID"
PERSON_REF_HEADER = "X-Person-Ref"
#: A person reference: an opaque id from the caller's systems (not a name or national id).
PERSON_REF = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_TOKEN = re.compile(rf"^{TOKEN_PREFIX}_([0-9a-f]{{16}})_([A-Za-z0-9_-]{{43}})$")
_CLIENT_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_DUMMY_SALT = bytes(16)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


@dataclass(frozen=True)
class RequestInfo:
    """Who asked, about whom, under which id (read by the audit log)."""

    request_id: str
    client_id: str
    person_refs: tuple[str, ...] = ()


#: The current request's :class:`RequestInfo` (set by :class:`AuthMiddleware`; BentoML
#: runs sync APIs in a thread with a copy of this context).
REQUEST: contextvars.ContextVar[RequestInfo | None] = contextvars.ContextVar(
    "credit_scoring_request", default=None
)


# --------------------------------------------------------------------------- keys


def token_hash(token: str, salt: bytes) -> str:
    """HMAC-SHA256 of ``token`` under ``salt`` (hex)."""
    return hmac.new(salt, token.encode(), hashlib.sha256).hexdigest()


def mint_key(client_id: str, keys_file: str | Path) -> tuple[str, dict[str, str]]:
    """A new token for ``client_id``: its hashed record is appended to ``keys_file``
    (created with mode 0600); the token itself is returned and stored nowhere."""
    if not _CLIENT_ID.match(client_id):
        raise ValueError(f"client id must match {_CLIENT_ID.pattern}; got {client_id!r}")
    key_id = secrets.token_hex(8)
    token = f"{TOKEN_PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
    salt = secrets.token_bytes(16)
    record = {
        "key_id": key_id,
        "client_id": client_id,
        "salt": salt.hex(),
        "hmac_sha256": token_hash(token, salt),
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    path = Path(keys_file)
    keys = load_keys(path.read_text()) if path.is_file() else []
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.touch(mode=0o600)
    tmp.write_text(json.dumps({"keys": [*keys, record]}, indent=2) + "\n")
    tmp.replace(path)
    return token, record


def revoke_key(key_id: str, keys_file: str | Path) -> bool:
    """Remove a key from ``keys_file``; False if it was not there."""
    path = Path(keys_file)
    keys = load_keys(path.read_text()) if path.is_file() else []
    kept = [k for k in keys if k["key_id"] != key_id]
    if len(kept) == len(keys):
        return False
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.touch(mode=0o600)
    tmp.write_text(json.dumps({"keys": kept}, indent=2) + "\n")
    tmp.replace(path)
    return True


def load_keys(text: str) -> list[dict[str, str]]:
    """The key records of a keys file's JSON (``{"keys": [...]}``), checked."""
    data = json.loads(text)
    keys = data.get("keys") if isinstance(data, dict) else None
    if not isinstance(keys, list):
        raise ServeConfigError('API keys: expected {"keys": [...]}')
    for k in keys:
        missing = {"key_id", "client_id", "salt", "hmac_sha256"} - set(k)
        if missing:
            raise ServeConfigError(f"API keys: a key lacks {sorted(missing)}")
    return keys


class Authenticator:
    """Client id from request headers, or None (not authenticated)."""

    def __init__(
        self, mode: str, keys: list[dict[str, str]] | None = None, header: str = ""
    ) -> None:
        self.mode = mode
        self.keys = {k["key_id"]: k for k in keys or []}
        self.header = header.lower().encode()

    @classmethod
    def from_config(cls, config: ServeConfig) -> Authenticator:
        """The configured authenticator; ServeConfigError if api_key mode has no keys."""
        mode = config.auth.mode
        if mode == "none":
            logger.warning(
                "authentication is OFF (serve.auth.mode=none): every route answers anyone; "
                "use this only on a loopback address for local development"
            )
            return cls(mode)
        if mode == "trusted_header":
            logger.info("authentication by the gateway header %s", config.auth.trusted_header)
            return cls(mode, header=config.auth.trusted_header)
        path = config.resolve(config.auth.keys_file)
        if config.keys_json:
            keys = load_keys(config.keys_json)
        elif path.is_file():
            keys = load_keys(path.read_text())
        else:
            keys = []
        if not keys:
            raise ServeConfigError(
                f"no API keys (looked in CREDIT_SCORING_API_KEYS and {path}): refusing to "
                "start. Mint one with `credit-scoring api-key mint --client-id NAME`, or "
                "set CREDIT_SCORING_AUTH=none for local development only"
            )
        logger.info("API key authentication: %d keys", len(keys))
        return cls(mode, keys)

    def client(self, headers: list[tuple[bytes, bytes]]) -> str | None:
        """The authenticated client id, or None."""
        if self.mode == "none":
            return "anonymous"
        if self.mode == "trusted_header":
            for name, value in headers:
                if name == self.header:
                    client = value.decode("latin-1")
                    return client if _CLIENT_ID.match(client) else None
            return None
        auth = next((v for n, v in headers if n == b"authorization"), None)
        if auth is None:
            return None
        scheme, _, token = auth.decode("latin-1").partition(" ")
        if scheme.lower() != "bearer":
            return None
        token = token.strip()
        m = _TOKEN.match(token)
        key = self.keys.get(m.group(1)) if m else None
        salt = bytes.fromhex(key["salt"]) if key else _DUMMY_SALT
        want = key["hmac_sha256"] if key else "0" * 64
        ok = hmac.compare_digest(token_hash(token, salt), want)
        return key["client_id"] if ok and key else None


# --------------------------------------------------------------------------- ASGI


async def _respond(send: Send, status: int, body: dict, headers: list[tuple[bytes, bytes]]):
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


class AuthMiddleware:
    """401 for unauthenticated calls (health probes excepted); the request's id, client and
    person reference in :data:`REQUEST` and its id in the ``X-Request-ID`` response header."""

    def __init__(self, app: ASGIApp, config: ServeConfig | None = None) -> None:
        self.app = app
        self.auth = Authenticator.from_config(config or ServeConfig.load())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        headers = scope["headers"]
        client = self.auth.client(headers)
        if client is None:
            logger.info("401 on %s (missing or invalid credentials)", scope["path"])
            await _respond(
                send,
                401,
                {"error": "unauthorized"},
                [(b"www-authenticate", b'Bearer realm="credit-scoring"')],
            )
            return
        raw = next((v for n, v in headers if n == b"x-person-ref"), b"").decode("latin-1")
        refs = tuple(r.strip() for r in raw.split(",")) if raw else ()
        if not all(PERSON_REF.match(r) for r in refs):
            await _respond(
                send,
                400,
                {
                    "error": f"{PERSON_REF_HEADER}: comma-separated references, each "
                    f"matching {PERSON_REF.pattern}"
                },
                [],
            )
            return
        request_id = uuid.uuid4().hex
        token = REQUEST.set(RequestInfo(request_id, client, refs))
        rid = (REQUEST_ID_HEADER.lower().encode(), request_id.encode())

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), rid]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            REQUEST.reset(token)
