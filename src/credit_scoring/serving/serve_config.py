"""What the running service reads at start: the pinned model, and its auth and audit settings.

``credit-scoring package`` writes a serve config file (``serve.config_file``, default
``serve_config.json`` in the project folder) naming the exact BentoML model tag it imported,
its registry version and run id, and the ``serve.auth`` / ``serve.audit`` settings. The
service reads it once per worker; environment variables override it (secrets such as a
PostgreSQL password belong in the environment, never in the file):

=============================== ===================================================
``CREDIT_SCORING_SERVE_CONFIG``  path of the serve config file
``CREDIT_SCORING_MODEL_TAG``     exact BentoML tag to serve (``credit-scoring:<v>``)
``CREDIT_SCORING_AUTH``          ``api_key`` | ``trusted_header`` | ``none``
``CREDIT_SCORING_API_KEYS_FILE`` hashed API keys file
``CREDIT_SCORING_API_KEYS``      the keys file's JSON, inline
``CREDIT_SCORING_TRUSTED_HEADER`` header naming the client in trusted_header mode
``CREDIT_SCORING_AUDIT_DB_URL``  SQLAlchemy URL of the audit database
``CREDIT_SCORING_AUDIT``         ``off``: no audit log (benchmarks, local use only)
=============================== ===================================================

A tag is required and must name a version: the service never loads ``:latest``, so a
restart serves exactly what was packaged for this checkout, whatever else the (possibly
shared) BentoML store has received since.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from credit_scoring.config import ServeAuditParams, ServeAuthParams
from credit_scoring.serving.contract import BENTO_MODEL_NAME

CONFIG_ENV = "CREDIT_SCORING_SERVE_CONFIG"
DEFAULT_CONFIG_FILE = "serve_config.json"
MODEL_TAG_ENV = "CREDIT_SCORING_MODEL_TAG"
AUTH_ENV = "CREDIT_SCORING_AUTH"
KEYS_FILE_ENV = "CREDIT_SCORING_API_KEYS_FILE"
KEYS_ENV = "CREDIT_SCORING_API_KEYS"
TRUSTED_HEADER_ENV = "CREDIT_SCORING_TRUSTED_HEADER"
AUDIT_DB_ENV = "CREDIT_SCORING_AUDIT_DB_URL"
AUDIT_ENV = "CREDIT_SCORING_AUDIT"


class ServeConfigError(RuntimeError):
    """The service cannot start safely with this configuration."""


def check_tag(tag: str) -> str:
    """``tag`` if it names one exact version of the project's model, else ServeConfigError."""
    name, _, version = tag.partition(":")
    if name != BENTO_MODEL_NAME or not version or version == "latest":
        raise ServeConfigError(
            f"the served model must be an exact tag '{BENTO_MODEL_NAME}:<version>', got "
            f"'{tag}' (never ':latest'); run `credit-scoring package`"
        )
    return tag


@dataclass(frozen=True)
class ServeConfig:
    """The service's settings once file and environment are merged."""

    model_tag: str
    auth: ServeAuthParams
    audit: ServeAuditParams
    base_dir: Path
    keys_json: str | None = None

    @classmethod
    def load(cls, environ: dict[str, str] | None = None) -> ServeConfig:
        """The config file (if any) overridden by the environment; ServeConfigError when no
        exact model tag is given by either."""
        env = dict(os.environ if environ is None else environ)
        path = Path(env.get(CONFIG_ENV) or DEFAULT_CONFIG_FILE)
        data: dict[str, Any] = {}
        if path.is_file():
            data = json.loads(path.read_text())
        elif env.get(CONFIG_ENV):
            raise ServeConfigError(f"{CONFIG_ENV}={path}: no such file")
        tag = env.get(MODEL_TAG_ENV) or data.get("model", {}).get("tag")
        if not tag:
            raise ServeConfigError(
                f"no served model pinned: neither {path} (written by `credit-scoring package`) "
                f"nor {MODEL_TAG_ENV} names a BentoML model tag"
            )
        auth = dict(data.get("auth", {}))
        for key, var in (
            ("mode", AUTH_ENV),
            ("keys_file", KEYS_FILE_ENV),
            ("trusted_header", TRUSTED_HEADER_ENV),
        ):
            if env.get(var):
                auth[key] = env[var]
        audit = dict(data.get("audit", {}))
        if env.get(AUDIT_DB_ENV):
            audit["db_url"] = env[AUDIT_DB_ENV]
        if env.get(AUDIT_ENV):
            audit["enabled"] = env[AUDIT_ENV].lower() not in ("off", "0", "false", "no")
        return cls(
            model_tag=check_tag(tag),
            auth=ServeAuthParams(**auth),
            audit=ServeAuditParams(**audit),
            base_dir=path.resolve().parent if path.is_file() else Path.cwd(),
            keys_json=env.get(KEYS_ENV) or None,
        )

    def resolve(self, path: str) -> Path:
        """A relative path of the config, from the config file's folder."""
        p = Path(path)
        return p if p.is_absolute() else self.base_dir / p

    def audit_url(self) -> str:
        """The audit database's SQLAlchemy URL (SQLite beside the config by default)."""
        return audit_db_url(self.audit, self.base_dir)


def audit_db_url(
    audit: ServeAuditParams, base_dir: Path, environ: dict[str, str] | None = None
) -> str:
    """CREDIT_SCORING_AUDIT_DB_URL, else ``audit.db_url``, else SQLite at ``sqlite_path``
    (relative to ``base_dir``)."""
    env = os.environ if environ is None else environ
    if env.get(AUDIT_DB_ENV):
        return env[AUDIT_DB_ENV]
    if audit.db_url:
        return audit.db_url
    path = Path(audit.sqlite_path)
    return f"sqlite:///{path if path.is_absolute() else base_dir / path}"


def serve_config_document(
    model: dict[str, Any], auth: ServeAuthParams, audit: ServeAuditParams
) -> dict[str, Any]:
    """The JSON `package` writes: the pinned model and the auth/audit settings (no secrets:
    a ``db_url`` with a password is refused, pass it in CREDIT_SCORING_AUDIT_DB_URL)."""
    check_tag(model["tag"])
    if audit.db_url:
        from sqlalchemy.engine import make_url

        if make_url(audit.db_url).password:
            raise ServeConfigError(
                f"serve.audit.db_url holds a password; set {AUDIT_DB_ENV} in the "
                "environment instead"
            )
    return {"model": model, "auth": auth.model_dump(), "audit": audit.model_dump()}
