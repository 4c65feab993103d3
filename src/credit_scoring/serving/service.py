"""BentoML service: the credit decision over HTTP (thin; the logic is in ``serving``).

Serve it with ``bentoml serve credit_scoring.serving.service:CreditScoring`` after
``credit-scoring package`` has put the registry's champion into the BentoML model store.
The model is loaded once per worker, in ``__init__``, from the BentoML model store;
nothing is read from MLflow per request. BentoML's /healthz, /livez, /readyz and
/metrics stay available; invalid requests get a 400 naming the field.
"""

from __future__ import annotations

import bentoml
from starlette.responses import JSONResponse

from credit_scoring.serving.audit_log import AuditLog
from credit_scoring.serving.auth import AuthMiddleware
from credit_scoring.serving.contract import (
    AdviceRequest,
    AdviceResponse,
    BatchDecisions,
    BatchRequest,
    BatchTooLargeError,
    Decision,
    EventsRequest,
    FeaturesRequest,
    ModelInfo,
    ScoreRequest,
)
from credit_scoring.serving.middleware import guard
from credit_scoring.serving.scorer import Scorer
from credit_scoring.serving.serve_config import ServeConfig
from credit_scoring.telemetry import disable_telemetry


@bentoml.service(
    name="credit_scoring",
    # One worker per core; threads: a long batch does not hold up a worker's other
    # requests; more than max_concurrency requests in flight get a 429 (serving/README).
    workers="cpu_count",
    threads=2,
    traffic={"timeout": 30, "max_concurrency": 64},
    labels={"project": "credit-scoring"},
)
class CreditScoring:
    """Score, band, limit, tiers and reasons for one person, a batch, or raw behaviour;
    advice on how to raise a score."""

    # the exact tag `credit-scoring package` pinned (serve_config.py), never ':latest'
    bento_model = bentoml.models.BentoModel(ServeConfig.load().model_tag)

    def __init__(self) -> None:
        disable_telemetry()
        self.scorer = Scorer.load(self.bento_model.path)
        # contribution tables built before the first request, not during it (treeshap.py)
        self.scorer.model.prepare_explanations()
        self.audit = AuditLog.for_service(ServeConfig.load(), self.scorer, self.bento_model)

    @bentoml.on_shutdown
    def close_audit_log(self) -> None:
        """Write every queued decision to the audit log before the worker exits."""
        self.audit.close()

    @bentoml.api(route="/score")
    async def score(self, request: ScoreRequest, /) -> Decision:
        """One person's features -> the full decision.

        Run on the event loop, not in a thread: one person's decision with reasons costs
        about 1.2 ms of CPU, while handing it to BentoML's thread pool and back cost the
        loop about 4 ms of wall time per request on a loaded machine (cProfile of a real
        worker: waking the pool thread, 500 requests). The body was validated before
        (middleware.py); batches and the other routes still go to threads."""
        features = request.features.model_dump()
        decision = self.scorer.score(features, request.with_reasons)
        # a full audit queue answers 503 at once instead of holding the loop
        self.audit.record("score", [features], [decision], timeout=0.0)
        return Decision(**decision)

    @bentoml.api(route="/score_features")
    def score_features(self, request: FeaturesRequest, /) -> Decision:
        """The served model's own features by name (for features the lender brought) ->
        the full decision; a 400 names an unknown feature or a value out of its range."""
        decision = self.scorer.score_features(request.features, request.with_reasons)
        self.audit.record("score_features", [dict(request.features)], [decision])
        return Decision(**decision)

    @bentoml.api(route="/score_batch")
    def score_batch(self, request: BatchRequest, /) -> BatchDecisions:
        """Up to `max_batch` people's features -> their decisions, in order (413 if more)."""
        try:
            rows = self.scorer.score_batch(
                [p.model_dump() for p in request.people], request.with_reasons
            )
        except BatchTooLargeError as err:
            return JSONResponse(  # type: ignore[return-value]
                {"error": str(err), "detail": [{"loc": ["people"], "msg": str(err)}]},
                status_code=413,
            )
        self.audit.record("score_batch", [p.model_dump() for p in request.people], rows)
        return BatchDecisions(
            decisions=[Decision(**r) for r in rows], model_version=self.scorer.version
        )

    @bentoml.api(route="/score_events")
    def score_events(self, request: EventsRequest, /) -> Decision:
        """One person's profile, events and contacts -> features (pipeline code) -> decision."""
        features: list[dict] = []
        decision = self.scorer.score_events(request, features_out=features)
        self.audit.record("score_events", features, [decision])
        return Decision(**decision)

    @bentoml.api(route="/advice")
    def advice(self, request: AdviceRequest, /) -> AdviceResponse:
        """One person's features -> today's decision and the changes within their power
        (only actionable features) that raise the score most, each re-scored by the model."""
        advice = self.scorer.advise(
            request.features.model_dump(),
            request.max_actions,
            request.min_gain_points,
            request.with_reasons,
        )
        self.audit.record("advice", [request.features.model_dump()], [advice["decision"]])
        return AdviceResponse(**advice)

    @bentoml.api(route="/model")
    def model(self) -> ModelInfo:
        """The model being served: name, version, alias, features, test metrics."""
        return ModelInfo(**self.scorer.model_info())


# the first middleware added is the outermost: authentication runs before anything else
CreditScoring.add_asgi_middleware(AuthMiddleware)  # every route but the health probes
guard(CreditScoring, CreditScoring.inner.bento_model)  # limits, contract, drain, metric labels
