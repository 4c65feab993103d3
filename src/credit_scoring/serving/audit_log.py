"""The decision audit log: every decision the service makes, in a database.

One row per decision (a batch call gives one row per person) in the table ``decisions``
(schema: :data:`DECISIONS`, documented in ``docs/audit_log.md``), in SQLite by default and
in PostgreSQL (or any SQLAlchemy database) when a URL is configured. The schema is created
and upgraded by the Alembic migrations shipped in this package
(``serving/audit_migrations``), run by :func:`migrate` when the service starts.

Writing never happens on the request path: :meth:`AuditLog.record` builds the rows and
hands them to :class:`AuditWriter`, a background thread that inserts them in batches
(``serve.audit.batch_size`` rows, at least every ``serve.audit.flush_seconds``).

- Clean shutdown: the service's shutdown hook calls :meth:`AuditLog.close`, which writes
  everything queued before returning; nothing is lost.
- Crash (``kill -9``, power loss): what is queued and not yet committed is lost: at most
  ``serve.audit.queue_size`` decisions, in practice the last ``flush_seconds`` of traffic
  (about 10 decisions at 50 req/s).
- Queue full (the database is down or slower than the traffic): the request waits up to
  ``PUT_TIMEOUT_S`` for room, then gets a 503; a decision is never returned without
  being queued for the log. A failing insert is retried every second, logged at ERROR
  with the error's type only (never the row's values).

Nothing here logs personal data: no feature values, no person references, no request ids.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Engine,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    create_engine,
    delete,
    event,
    select,
    text,
)

from credit_scoring.serving.auth import REQUEST
from credit_scoring.serving.serve_config import ServeConfig

logger = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).with_name("audit_migrations")
#: How long a request waits for room in a full queue before its 503.
PUT_TIMEOUT_S = 0.5
_PG_LOCK_KEY = 0x6372_6564  # advisory lock: one migrator at a time across workers

metadata = MetaData()

#: One decision. Times are UTC (naive). ``item`` is the person's position in a batch call.
DECISIONS = Table(
    "decisions",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("request_id", String(32), nullable=False),
    Column("item", Integer, nullable=False),
    Column("decided_at", DateTime(), nullable=False),
    Column("route", String(32), nullable=False),
    Column("client_id", String(64), nullable=False),
    Column("person_ref", String(128), nullable=True),
    Column("model_name", String(128), nullable=False),
    Column("model_version", String(160), nullable=False),
    Column("registry_version", String(32), nullable=True),
    Column("run_id", String(64), nullable=True),
    Column("bento_model", String(160), nullable=False),
    Column("bundle_sha256", String(64), nullable=False),
    Column("features", JSON, nullable=False),
    Column("pd", Float, nullable=False),
    Column("score", Integer, nullable=False),
    Column("band", String(32), nullable=False),
    Column("credit_limit", Float, nullable=False),
    Column("tiers", JSON, nullable=False),
    Column("reason_codes", JSON, nullable=True),
    UniqueConstraint("request_id", "item", name="uq_decisions_request_item"),
    Index("ix_decisions_decided_at", "decided_at"),
    Index("ix_decisions_person_ref_decided_at", "person_ref", "decided_at"),
)


#: Columns the writer fills (all but the autoincrement id), in table order.
_INSERT_COLUMNS = tuple(c.name for c in DECISIONS.columns if c.name != "id")
_JSON_COLUMNS = frozenset(c.name for c in DECISIONS.columns if isinstance(c.type, JSON))


def _db_value(v: Any) -> Any:
    """A row value as the drivers take it: JSON as text, times as SQLAlchemy's SQLite text
    form (PostgreSQL casts both), the rest as is."""
    if isinstance(v, dict | list):
        return json.dumps(v)
    if isinstance(v, dt.datetime):
        return v.strftime("%Y-%m-%d %H:%M:%S.%f")
    return v


class AuditBacklogFull(RuntimeError):
    """The writer's queue stayed full: the decision cannot be logged now."""


class PersonRefMismatch(ValueError):
    """X-Person-Ref names a different number of people than the call decided."""


# --------------------------------------------------------------------------- database


def engine_for(url: str) -> Engine:
    """An engine for ``url``; SQLite gets its folder, WAL mode and a busy timeout (several
    workers write the same file)."""
    if url.startswith("sqlite"):
        path = url.split(":///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record) -> None:  # pragma: no cover - trivial
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


def migrate(engine: Engine) -> None:
    """Bring the audit schema to the newest Alembic revision (idempotent)."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with _sqlite_file_lock(engine), engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


@contextmanager
def _sqlite_file_lock(engine: Engine) -> Iterator[None]:
    """One migrator at a time on a SQLite file (workers start together): an flock beside it."""
    db = engine.url.database
    if engine.dialect.name != "sqlite" or not db or db == ":memory:":
        yield
        return
    import fcntl

    with open(f"{db}.migrate.lock", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def purge(engine: Engine, days: int, now: dt.datetime | None = None) -> int:
    """Delete decisions older than ``days`` days; returns how many."""
    now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    cutoff = now - dt.timedelta(days=days)
    with engine.begin() as conn:
        return conn.execute(delete(DECISIONS).where(DECISIONS.c.decided_at < cutoff)).rowcount


def person_decisions(engine: Engine, person_ref: str) -> list[dict[str, Any]]:
    """Every logged decision about one person, oldest first (for a subject-access request)."""
    query = (
        select(DECISIONS)
        .where(DECISIONS.c.person_ref == person_ref)
        .order_by(DECISIONS.c.decided_at, DECISIONS.c.id)
    )
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(query)]


# --------------------------------------------------------------------------- writer


class AuditWriter:
    """A background thread inserting queued rows in batches; bounded by ``max_rows``."""

    def __init__(
        self, engine: Engine, max_rows: int, batch_size: int, flush_seconds: float
    ) -> None:
        self.engine = engine
        self.max_rows = int(max_rows)
        self.batch_size = int(batch_size)
        self.flush_seconds = float(flush_seconds)
        self._rows: deque[dict[str, Any]] = deque()
        self._pending = 0  # queued + being written
        self._cond = threading.Condition()
        self._closing = False
        self.written = 0
        self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
        self._thread.start()

    def submit(self, rows: Sequence[dict[str, Any]], timeout: float = PUT_TIMEOUT_S) -> None:
        """Queue ``rows`` (all or none); AuditBacklogFull if no room came within ``timeout``."""
        n = len(rows)
        with self._cond:
            if self._closing:
                raise AuditBacklogFull("the audit log is closed")
            room = self._cond.wait_for(
                lambda: self._pending + n <= self.max_rows or self._pending == 0, timeout
            )
            if not room:
                raise AuditBacklogFull(f"audit queue full ({self._pending} decisions waiting)")
            self._rows.extend(rows)
            self._pending += n
            self._cond.notify_all()

    def _take(self) -> list[dict[str, Any]]:
        with self._cond:
            self._cond.wait_for(lambda: self._rows or self._closing, self.flush_seconds)
            if len(self._rows) < self.batch_size and not self._closing:
                # let a batch build up, but never hold a row past flush_seconds
                self._cond.wait_for(
                    lambda: len(self._rows) >= self.batch_size or self._closing,
                    self.flush_seconds,
                )
            return [self._rows.popleft() for _ in range(min(self.batch_size, len(self._rows)))]

    def _write(self, batch: list[dict[str, Any]]) -> None:
        # The driver's executemany on plain tuples: the thread holds the GIL for
        # microseconds per row (the database work releases it), so request threads do not
        # wait behind SQLAlchemy's per-row processing (measured: benchmarks/bench_audit_log.py).
        names = _INSERT_COLUMNS
        params = [tuple(_db_value(row[c]) for c in names) for row in batch]
        mark = "?" if self.engine.dialect.paramstyle == "qmark" else "%s"
        sql = (
            f"INSERT INTO {DECISIONS.name} ({', '.join(names)}) "
            f"VALUES ({', '.join([mark] * len(names))})"
        )
        while True:
            try:
                raw = self.engine.raw_connection()
                try:
                    cur = raw.cursor()
                    cur.executemany(sql, params)
                    cur.close()
                    raw.commit()
                finally:
                    raw.close()
                break
            except Exception as err:
                logger.error(
                    "audit log: writing %d decisions failed (%s); retrying in 1 s",
                    len(batch),
                    type(err).__name__,
                )
                time.sleep(1.0)
        with self._cond:
            self._pending -= len(batch)
            self.written += len(batch)
            self._cond.notify_all()

    def _run(self) -> None:
        while True:
            batch = self._take()
            if batch:
                self._write(batch)
            elif self._closing:
                return

    def close(self, timeout: float = 30.0) -> None:
        """Write everything queued, then stop the thread."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join(timeout)
        if self._thread.is_alive():
            logger.error("audit log: %d decisions not written at shutdown", self._pending)


# --------------------------------------------------------------------------- the log


def bundle_sha256(bundle_dir: str | Path) -> str:
    """SHA-256 over a bundle's files (booster, then bundle.json): what decided, exactly."""
    from credit_scoring.decision.bundle import BOOSTER_FILE, BUNDLE_FILE

    digest = hashlib.sha256()
    for fname in (BOOSTER_FILE, BUNDLE_FILE):
        digest.update((Path(bundle_dir) / fname).read_bytes())
    return digest.hexdigest()


class AuditLog:
    """What the service calls: :meth:`record` one call's decisions; :meth:`close` at
    shutdown. ``model`` is the served model's serve_info (name, versions, run id, hash);
    ``feature_names`` the features the model reads (the ones logged)."""

    def __init__(
        self,
        url: str,
        model: Mapping[str, Any],
        bento_model: str,
        feature_names: Sequence[str] | None = None,
        queue_size: int = 10_000,
        batch_size: int = 500,
        flush_seconds: float = 0.2,
    ) -> None:
        self.engine = engine_for(url)
        migrate(self.engine)
        self.feature_names = list(feature_names) if feature_names is not None else None
        self.model = {
            "model_name": str(model.get("model_name") or ""),
            "model_version": str(model.get("model_version") or ""),
            "registry_version": model.get("registry_version"),
            "run_id": model.get("run_id"),
            "bento_model": bento_model,
            "bundle_sha256": str(model.get("bundle_sha256") or ""),
        }
        self.writer = AuditWriter(self.engine, queue_size, batch_size, flush_seconds)
        logger.info("audit log: %s database, schema at head", self.engine.dialect.name)

    @classmethod
    def for_service(cls, config: ServeConfig, scorer: Any, bento_model: Any) -> AuditLog:
        """The log of a service: settings from ``config``, model identity from the
        scorer's serve_info (the bundle hashed here if the info predates the hash)."""
        if not config.audit.enabled:
            logger.warning(
                "the decision audit log is OFF (serve.audit.enabled=false or "
                "CREDIT_SCORING_AUDIT=off): decisions are not recorded"
            )
            return _NoAuditLog()  # type: ignore[return-value]
        info = dict(scorer.info)
        if not info.get("bundle_sha256"):
            info["bundle_sha256"] = bundle_sha256(bento_model.path)
        return cls(
            config.audit_url(),
            info,
            str(bento_model.tag),
            scorer.model.feature_names,
            config.audit.queue_size,
            config.audit.batch_size,
            config.audit.flush_seconds,
        )

    def rows(
        self,
        route: str,
        features: Sequence[Mapping[str, Any]],
        decisions: Sequence[Mapping[str, Any]],
    ) -> list[dict[str, Any]]:
        """The table rows of one call (request id, client and person refs from
        :data:`~credit_scoring.serving.auth.REQUEST`)."""
        info = REQUEST.get()
        request_id = info.request_id if info else uuid.uuid4().hex
        client = info.client_id if info else "unknown"
        refs = info.person_refs if info else ()
        if refs and len(refs) != len(decisions):
            raise PersonRefMismatch(
                f"X-Person-Ref names {len(refs)} people but the call decided "
                f"{len(decisions)}; give one reference per person, in order"
            )
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        out = []
        for i, (feats, d) in enumerate(zip(features, decisions, strict=True)):
            reasons = d.get("reasons")
            out.append(
                {
                    "request_id": request_id,
                    "item": i,
                    "decided_at": now,
                    "route": route,
                    "client_id": client,
                    "person_ref": refs[i] if refs else None,
                    **self.model,
                    "features": {k: _plain(feats.get(k)) for k in (self.feature_names or feats)},
                    "pd": float(d["pd"]),
                    "score": int(d["score"]),
                    "band": str(d["band"]),
                    "credit_limit": float(d["credit_limit"]),
                    "tiers": list(d["tiers"]),
                    "reason_codes": None if reasons is None else [r["feature"] for r in reasons],
                }
            )
        return out

    def record(
        self,
        route: str,
        features: Sequence[Mapping[str, Any]],
        decisions: Sequence[Mapping[str, Any]],
        timeout: float = PUT_TIMEOUT_S,
    ) -> None:
        """Queue one call's decisions. In the service: a 400 (BentoML's BadInput) when the
        person references do not match, a 503 when the queue stays full for ``timeout``
        seconds (0 on the event loop: never wait there)."""
        try:
            self.writer.submit(self.rows(route, features, decisions), timeout)
        except (PersonRefMismatch, AuditBacklogFull) as err:
            raise _http_error(err) from None

    def close(self) -> None:
        """Write what is queued (clean shutdown), then release the database."""
        self.writer.close()
        self.engine.dispose()
        logger.info("audit log closed: %d decisions written", self.writer.written)


class _NoAuditLog:
    """The audit log switched off: records nothing (benchmarks, local use)."""

    def record(self, *_args: Any, **_kwargs: Any) -> None:
        return None

    def close(self) -> None:
        return None


def _plain(v: Any) -> float | None:
    """A feature value as JSON (missing -> None)."""
    try:
        f = float(v)
    except (TypeError, ValueError):  # None, pd.NA
        return None
    return None if f != f else f


def _http_error(err: Exception) -> Exception:
    """The BentoML exception that answers ``err`` with a 400 or 503 (BentoML imported only
    here, so the monitor can read the log without it)."""
    try:
        from http import HTTPStatus

        from bentoml.exceptions import BentoMLException
    except ImportError:  # pragma: no cover - outside the service
        return err
    status = (
        HTTPStatus.BAD_REQUEST
        if isinstance(err, PersonRefMismatch)
        else HTTPStatus.SERVICE_UNAVAILABLE
    )
    return BentoMLException(str(err), error_code=status)


@contextmanager
def opened(url: str) -> Iterator[Engine]:
    """An engine on an audit database whose schema is at head (for the commands)."""
    engine = engine_for(url)
    try:
        migrate(engine)
        yield engine
    finally:
        engine.dispose()
