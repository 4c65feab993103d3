"""The BentoML service: a real `bentoml serve` on a free port, talked to over HTTP.

The small trained model of conftest is imported into a BentoML model store under a
temporary BENTOML_HOME (never the user's), then served exactly as in production. Proves
parity with batch scoring (/score, /score_batch, /score_events vs CreditModel.decide and
the pipeline's feature table), 4xx (never 5xx) on bad input with the field named, the
batch limit, the model card, BentoML's health and metrics endpoints, and a property-based
fuzz of the API from its own OpenAPI document.
"""

from __future__ import annotations

import json
import math
import os
import re
import time

import httpx
import numpy as np
import pandas as pd
import pytest

from credit_scoring.decision.bundle import DIMENSIONS, POINT_COLUMNS
from credit_scoring.features.compute import person_data
from credit_scoring.features.registry import SEVERE_DPD
from credit_scoring.serving.contract import EventsRequest
from credit_scoring.serving.scorer import Scorer

SAMPLE = 12


# --------------------------------------------------------------------------- helpers


def _clean(v):
    """pandas/numpy scalars -> JSON values (missing -> None, times -> ISO strings)."""
    if v is None or v is pd.NA or v is pd.NaT:
        return None
    if isinstance(v, pd.Timestamp):
        return v.strftime("%Y-%m-%dT%H:%M:%S.%f")
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and math.isnan(v):
        return None
    return v


def events_request(data, person_id: str, observation_date: pd.Timestamp) -> dict:
    """The /score_events body for one person of a simulated world."""
    d = person_data(data, [person_id])
    prof = d.profiles.set_index("person_id")
    own = prof.loc[person_id].drop(["gender", "birth_year"]).to_dict()
    profile = {k: _clean(v) for k, v in own.items()}
    for k in ("employment_start_date", "registered_date"):
        if profile[k] is not None:
            profile[k] = profile[k][:10]
    ev = d.events[d.events["person_id"] == person_id].drop(columns=["person_id"])
    events = [
        {k: _clean(v) for k, v in row.items() if _clean(v) is not None}
        for row in ev.to_dict("records")
    ]
    for e in events:
        if "due_date" in e:
            e["due_date"] = e["due_date"][:10]
    contacts = []
    for row in d.contacts.to_dict("records"):
        cid = row["contact_id"]
        c = {"contact_id": cid, "since_date": _clean(row["since_date"])[:10]}
        if cid in prof.index:
            c["known"] = True
            c["identity_verified"] = _clean(prof.loc[cid, "identity_verified"])
            late = d.events[
                (d.events["person_id"] == cid)
                & (d.events["event_type"] == "repayment")
                & (d.events["days_past_due"].fillna(0) >= SEVERE_DPD)
            ]
            c["late_repayments"] = [
                {"event_time": _clean(t), "days_past_due": int(dpd)}
                for t, dpd in zip(late["event_time"], late["days_past_due"], strict=True)
            ]
        contacts.append(c)
    return {
        "observation_date": observation_date.strftime("%Y-%m-%d"),
        "profile": profile,
        "events": events,
        "contacts": contacts,
        "with_reasons": True,
    }


def features_json(row: pd.Series, names: list[str]) -> dict:
    return {n: (None if pd.isna(row[n]) else float(row[n])) for n in names}


def assert_same_decision(got: dict, want: pd.Series, what: str) -> None:
    """An API decision equals a row of CreditModel.decide (with reasons)."""
    assert got["pd"] == pytest.approx(float(want["pd"]), rel=1e-9, abs=1e-12), what
    assert got["score"] == int(want["score"]), what
    assert got["band"] == want["band"], what
    assert got["credit_limit"] == pytest.approx(float(want["credit_limit"])), what
    assert got["tiers"] == list(want["tiers"]), what
    if "reasons" in want:
        assert [r["feature"] for r in got["reasons"]] == [r["feature"] for r in want["reasons"]], (
            what
        )
        for d, col in zip(DIMENSIONS, POINT_COLUMNS, strict=True):
            assert got["dimension_points"][d] == pytest.approx(float(want[col])), what


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def sample(small_world):
    """A seeded sample of people from the feature table (with missing values among them)."""
    _, _, table = small_world
    return table.sample(SAMPLE, random_state=7).reset_index(drop=True)


# --------------------------------------------------------------------------- in-process


def test_scorer_score_events_equals_the_pipeline_feature_table(small_world, small_model):
    """Raw events -> features online gives exactly the batch feature rows, for 60 people."""
    data, _, table = small_world
    scorer = Scorer(small_model, {"model_version": "t"})
    rows = table.sample(60, random_state=1)
    for _, row in rows.iterrows():
        req = EventsRequest.model_validate(
            events_request(data, row["person_id"], row["observation_date"])
        )
        got = scorer.features_from_events(req)[small_model.feature_names].iloc[0]
        want = row[small_model.feature_names].astype(float)
        pd.testing.assert_series_equal(
            got.astype(float), want, check_names=False, obj=row["person_id"]
        )


def test_scorer_advice_is_the_library_advice_with_todays_decision(small_model, sample):
    """Scorer.advise (the service's logic) == advice.advise on the same feature row."""
    from credit_scoring.decision.advice import advise

    scorer = Scorer(small_model, {"model_version": "t"})
    for _, row in sample.iterrows():
        got = scorer.advise(features_json(row, small_model.feature_names), max_actions=2)
        want = advise(small_model, row.to_frame().T)[0].to_dict()
        assert got["advice"] == want["items"][:2]
        assert got["decision"]["score"] == want["current"]["score"]


def test_scorer_decisions_are_the_bundles_records_with_the_model_version(small_model, sample):
    """The scorer decides nothing itself: /score and /score_batch bodies are the bundle's
    decision records plus the model version, with the API Decision's fields in its order."""
    from credit_scoring.serving.contract import Decision

    scorer = Scorer(small_model, {"model_version": "t"})
    people = [features_json(row, small_model.feature_names) for _, row in sample.iterrows()]
    for with_reasons in (True, False):
        want = [
            {**r, "model_version": "t"}
            for r in small_model.decide_records(people, with_reasons=with_reasons)
        ]
        assert scorer.score_batch(people, with_reasons) == want
        assert [scorer.score(p, with_reasons) for p in people] == want
        for d in want:
            assert list(d) == list(Decision.model_fields), "the API's fields, in its order"
            assert Decision(**d).score == d["score"], "a valid Decision"


def test_scorer_advice_decides_todays_row_once(small_model, sample, monkeypatch):
    """/advice: today's decision (with reasons) is made once and advice builds on it; the
    candidates and the combined actions are the only other rows decided."""
    from credit_scoring.decision.advice import ACTIONS

    calls: list[tuple[int, bool]] = []
    decide_matrix = small_model.decide_matrix

    def counting(X, with_reasons=True):
        calls.append((len(X), with_reasons))
        return decide_matrix(X, with_reasons)

    monkeypatch.setattr(small_model, "decide_matrix", counting)
    scorer = Scorer(small_model, {"model_version": "t"})
    for _, row in sample.head(4).iterrows():
        calls.clear()
        got = scorer.advise(features_json(row, small_model.feature_names), with_reasons=True)
        assert calls[0] == (1, True), "today's row first, with reasons"
        assert calls[1] == (len(ACTIONS), False), "then only the candidates"
        assert calls[2:] == ([(1, False)] if got["combined"] else []), "then all together"
        assert got["decision"]["reasons"] is not None
        assert (
            got["decision"]["score"]
            == small_model.decide_one(
                features_json(row, small_model.feature_names), with_reasons=False
            )["score"]
        )


def test_library_advice_is_the_same_with_or_without_todays_decisions(small_model, sample):
    """advise(today=...) (the service's path) == advise() deciding today's rows itself;
    with reasons, today's PD comes from the contributions (equal up to float rounding)."""
    from credit_scoring.decision.advice import advise

    want = [a.to_dict() for a in advise(small_model, sample)]
    today = small_model.decide_records(sample, with_reasons=False)
    assert [a.to_dict() for a in advise(small_model, sample, today=today)] == want
    today = small_model.decide_records(sample, with_reasons=True)
    got = [a.to_dict() for a in advise(small_model, sample, today=today)]
    for g, w in zip(got, want, strict=True):
        assert g["current"].pop("pd") == pytest.approx(w["current"].pop("pd"), rel=1e-12)
    assert got == want
    with pytest.raises(ValueError, match="today has 1 decisions for 12 rows"):
        advise(small_model, sample, today=today[:1])


def test_scorer_batch_refuses_more_than_max_batch(small_model):
    from credit_scoring.serving.contract import BatchTooLargeError

    scorer = Scorer(small_model, {}, max_batch=3)
    assert len(scorer.score_batch([{}] * 3)) == 3, "a batch at the limit is scored"
    with pytest.raises(BatchTooLargeError, match=r"people: 4 people .* at most 3"):
        scorer.score_batch([{}] * 4)


# --------------------------------------------------------------------------- over HTTP


def test_health_and_metrics_endpoints_stay_available(server):
    for path in ("/healthz", "/livez", "/readyz"):
        assert server.get(path).status_code == 200, path
    server.post("/score", json={"features": {}})
    metrics = server.get("/metrics")
    assert metrics.status_code == 200 and "bentoml_service_request" in metrics.text


def test_score_over_http_equals_batch_decisions(server, sample, small_model):
    """/score (with and without reasons) == CreditModel.decide for the same people."""
    want = small_model.decide(sample[small_model.feature_names])
    for i, row in sample.iterrows():
        body = {"features": features_json(row, small_model.feature_names)}
        r = server.post("/score", json=body)
        assert r.status_code == 200, r.text
        assert_same_decision(r.json(), want.loc[i], f"person {row['person_id']}")
        quick = server.post("/score", json={**body, "with_reasons": False}).json()
        assert "reasons" not in quick and quick["score"] == r.json()["score"]


def test_score_batch_over_http_equals_batch_decisions_in_order(server, sample, small_model):
    want = small_model.decide(sample[small_model.feature_names])
    people = [features_json(row, small_model.feature_names) for _, row in sample.iterrows()]
    r = server.post("/score_batch", json={"people": people, "with_reasons": True})
    assert r.status_code == 200, r.text
    got = r.json()["decisions"]
    assert len(got) == len(sample)
    for i, d in enumerate(got):
        assert_same_decision(d, want.loc[i], f"batch position {i}")


def test_score_events_over_http_equals_batch_scoring(server, small_world, sample, small_model):
    """Raw behaviour via /score_events == the same person's row scored in batch."""
    data, _, _ = small_world
    want = small_model.decide(sample[small_model.feature_names])
    for i, row in sample.iterrows():
        body = events_request(data, row["person_id"], row["observation_date"])
        r = server.post("/score_events", json=body)
        assert r.status_code == 200, r.text
        assert_same_decision(r.json(), want.loc[i], f"events of {row['person_id']}")


def test_advice_over_http_is_the_library_advice(server, sample, small_model):
    """/advice == advice.advise for the same people: today's decision, then the actions
    (largest gain first) whose claimed new score the model gives for the changed features."""
    from credit_scoring.decision.advice import advise

    want = advise(small_model, sample)
    base = small_model.decide(sample[small_model.feature_names], with_reasons=False)
    advised = 0
    for i, row in sample.iterrows():
        body = {"features": features_json(row, small_model.feature_names), "max_actions": 3}
        r = server.post("/advice", json=body)
        assert r.status_code == 200, r.text
        got = r.json()
        assert got["decision"]["score"] == base["score"][i]
        expected = want[i].to_dict()
        assert [a["action"] for a in got["advice"]] == [a["action"] for a in expected["items"]]
        for a, w in zip(got["advice"], expected["items"], strict=True):
            assert a["outcome"]["score"] == w["outcome"]["score"]
            assert a["outcome"]["gain"] == a["outcome"]["score"] - got["decision"]["score"] > 0
            assert a["sentence"] == w["sentence"]
        advised += bool(got["advice"])
    assert advised, "nobody in the sample got advice"


def test_too_large_batch_is_refused_with_413_naming_the_limit(server, max_batch):
    r = server.post("/score_batch", json={"people": [{}] * (max_batch + 1)})
    assert r.status_code == 413, r.text
    assert f"at most {max_batch}" in r.json()["error"] and "people" in r.json()["error"]
    assert server.post("/score_batch", json={"people": [{}] * max_batch}).status_code == 200


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/score", {"features": {"n_late_365d": 1, "shoe_size": 42}}, "shoe_size"),
        ("/score", {"features": {"n_late_365d": "many"}}, "n_late_365d"),
        ("/score", {"features": {"n_late_365d": -1}}, "n_late_365d"),
        ("/score", {"features": {"income_verified": 2}}, "income_verified"),
        ("/score", {"feature": {}}, "features"),
        ("/score", {"features": {}, "with_reasons": "perhaps"}, "with_reasons"),
        ("/score_batch", {"people": []}, "people"),
        ("/score_batch", {"people": [{}, {"n_late_365d": [1]}]}, "n_late_365d"),
        ("/score_events", {"events": []}, "observation_date"),
        ("/advice", {"features": {}, "max_actions": 0}, "max_actions"),
        ("/advice", {"features": {"age": 30}}, "age"),
        ("/advice", {}, "features"),
        (
            "/score_events",
            {"observation_date": "2025-01-01", "profile": {"gender": "F"}},
            "gender",
        ),
        (
            "/score_events",
            {
                "observation_date": "2025-01-01",
                "events": [{"event_time": "2024-01-01", "event_type": "repayment"}],
            },
            "days_past_due",
        ),
        (
            "/score_events",
            {
                "observation_date": "2025-01-01",
                "events": [{"event_time": "2024-01-01", "event_type": "lottery"}],
            },
            "event_type",
        ),
    ],
)
def test_bad_input_is_a_400_naming_the_field(server, path, body, field):
    r = server.post(path, json=body)
    assert r.status_code == 400, f"{path} {body}: {r.status_code} {r.text}"
    assert field in r.text, f"the error does not name {field!r}: {r.text}"


@pytest.mark.parametrize("bad", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinite_values_are_a_400_naming_the_field(server, bad):
    raw = '{"features": {"utilisation_latest": ' + bad + "}}"
    r = server.post("/score", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 400, r.text
    assert "utilisation_latest" in r.text and "finite" in r.text


def test_malformed_json_is_a_4xx_not_a_crash(server):
    r = server.post("/score", content=b"{not json", headers={"content-type": "application/json"})
    assert 400 <= r.status_code < 500, r.text


def test_model_card_names_version_features_and_dimensions(server, small_model, max_batch):
    r = server.post("/model")
    assert r.status_code == 200, r.text
    card = r.json()
    assert card["model_version"].startswith("local@"), "no registry: local@<bundle hash>"
    assert card["bento_model"].startswith("credit-scoring:")
    assert [f["name"] for f in card["features"]] == small_model.feature_names
    assert all(f["description"] and f["dimension"] in DIMENSIONS for f in card["features"])
    assert card["max_batch"] == max_batch
    assert set(card["score_bands"]) == {"poor", "fair", "good", "very good", "excellent"}


def test_every_endpoint_example_in_the_openapi_document_works(server):
    """The example body documented for each endpoint is accepted (200)."""
    doc = server.get("/docs.json").json()
    for path in ("/score", "/score_batch", "/score_events", "/advice"):
        schema = doc["paths"][path]["post"]["requestBody"]["content"]["application/json"]
        example = schema["schema"]["example"]
        r = server.post(path, json=example)
        assert r.status_code == 200, f"{path} example refused: {r.text}"


# --------------------------------------------------------------------------- fuzz


def _fuzz(op, mode, url: str, failures: list[str]) -> None:
    """Run one operation's generated cases (bounded) and collect every failure."""
    from hypothesis import HealthCheck, Phase, given, settings
    from schemathesis.specs.openapi.checks import response_schema_conformance

    @given(case=op.as_strategy(generation_mode=mode))
    @settings(
        max_examples=25,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def run(case) -> None:
        response = case.call(base_url=url, timeout=30)
        where = f"{op.path} ({mode.value})"
        if response.status_code >= 500:
            failures.append(f"{where}: {response.status_code} for {case.body!r:.300}")
        elif response.status_code < 300:
            try:
                case.validate_response(response, checks=[response_schema_conformance])
            except Exception as err:  # a schema failure: keep going, report them all
                failures.append(f"{where}: 2xx breaks the documented schema: {err!s:.500}")
        elif "error" not in response.json():
            failures.append(f"{where}: {response.status_code} without an error message")

    run()


def test_fuzzing_the_api_from_its_openapi_document_finds_no_5xx(server):
    """schemathesis generates valid and invalid requests from /docs.json (25 + 25 per
    endpoint): no response is a 5xx, every 2xx response matches its documented schema and
    every 4xx carries an error message."""
    import schemathesis
    from schemathesis import GenerationMode

    url = str(server.base_url)
    schema = schemathesis.openapi.from_url(f"{url}/docs.json")
    failures: list[str] = []
    for path in ("/score", "/score_batch", "/score_events", "/advice", "/model"):
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            _fuzz(schema[path]["POST"], mode, url, failures)
    assert not failures, "\n".join(failures[:10])


def test_unknown_route_is_404_not_5xx(server):
    assert server.post("/nope", json={}).status_code == 404
    assert json.loads(server.get("/docs.json").text)["paths"]


def test_package_without_a_champion_says_so_and_exits_0(tmp_path, monkeypatch):
    """Issue #12: a gate that never promoted a model is a result, not a failure, so
    `dvc repro` ends with exit 0; package writes that nothing was packaged and why."""
    from typer.testing import CliRunner

    from credit_scoring.cli import app

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'empty.db'}")
    monkeypatch.setenv("BENTOML_HOME", str(tmp_path / "bentoml"))
    (tmp_path / "params.yaml").write_text("serve:\n  build: false\n")
    result = CliRunner().invoke(app, ["package"])
    assert result.exit_code == 0, result.output
    assert "error" not in result.output.lower(), result.output
    summary = json.loads((tmp_path / "reports/package.json").read_text())
    assert summary["packaged"] is False
    assert summary["reason"].startswith("no 'champion' model"), summary


def test_schemathesis_with_all_checks_over_every_route_finds_nothing(served, tmp_path):
    """`schemathesis run --checks all` (examples, coverage and fuzzing phases; bounded by
    --max-examples and --max-time) against the live server: 0 failures, response schemas
    included, over every route of the OpenAPI document (schemathesis.toml: on
    /score_events a schema-valid body may break a cross-field rule and get its 400)."""
    import subprocess
    import sys
    from pathlib import Path

    report = tmp_path / "st.json"
    cmd = [
        str(Path(sys.executable).parent / "schemathesis"),
        "--config-file",
        str(Path(__file__).parent / "schemathesis.toml"),
        "run",
        f"{served.url}/docs.json",
        "--checks",
        "all",
        "--phases",
        "examples,coverage,fuzzing",
        "--max-examples",
        "15",
        "--max-time",
        "240",
        "--workers",
        "2",
        "--seed",
        "14",
        "--generation-deterministic",
        "--request-timeout",
        "30",
        "--report-json-path",
        str(report),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=420)
    out = proc.stdout[-6000:]
    assert proc.returncode == 0, out
    assert re.search(r"\b0 failures|No issues found", out, re.I) or "failures" not in out.lower(), (
        out
    )
    selected = re.search(r"Selected: (\d+)/(\d+)", out)
    tested = re.search(r"Tested: (\d+)", out)
    assert selected and tested, out
    assert int(tested.group(1)) == int(selected.group(2)) >= 5, "every route was tested"


# --------------------------------------------------------------------------- resilience


def _worker_pids(proc_pid: int) -> list[int]:
    """Live BentoML worker processes under `bentoml serve`."""
    import psutil

    pids = []
    for c in psutil.Process(proc_pid).children(recursive=True):
        try:
            if c.status() != psutil.STATUS_ZOMBIE and "_bentoml_impl.worker.service" in " ".join(
                c.cmdline()
            ):
                pids.append(c.pid)
        except psutil.Error:
            continue
    return pids


def test_a_killed_worker_is_logged_at_error_with_its_cause_and_replaced(
    bentoml_home, serve, tmp_path
):
    """kill -9 of a worker: the log says at ERROR which worker died and of which signal;
    a new worker takes its place and serves the same model."""
    import signal

    with serve(bentoml_home, tmp_path / "serve.log") as s:
        card = httpx.post(f"{s.url}/model", timeout=30).json()
        victim = _worker_pids(s.proc.pid)[0]
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while True:
            pids = _worker_pids(s.proc.pid)
            if len(pids) == 2 and victim not in pids:
                break
            assert time.monotonic() < deadline, s.log_text()[-2000:]
            time.sleep(0.2)
        time.sleep(1)
        errors = [ln for ln in s.log_text().splitlines() if "[ERROR]" in ln]
        assert any(str(victim) in ln and "SIGKILL" in ln for ln in errors), s.log_text()[-2000:]
        for _ in range(6):  # both workers answer with the model of before
            assert httpx.post(f"{s.url}/model", timeout=30).json() == card


def test_sigterm_drains_ready_fails_new_connections_refused_in_flight_finish(
    bentoml_home, serve, tmp_path
):
    """SIGTERM to `bentoml serve` while a slow batch is in flight: /readyz fails at once,
    new connections are refused (not left hanging), the in-flight request gets its 200 and
    the server exits within its graceful timeout."""
    import signal
    import threading

    people = [{"n_late_365d": float(i % 7)} for i in range(50)]
    with serve(bentoml_home, tmp_path / "serve.log") as s:
        results: list[int | str] = []

        def slow() -> None:
            """Batches back to back on a keep-alive connection until the server refuses."""
            with httpx.Client(base_url=s.url, timeout=60) as c:
                for _ in range(20):
                    try:
                        r = c.post("/score_batch", json={"people": people, "with_reasons": True})
                    except httpx.ConnectError:
                        results.append("refused")
                        return
                    except httpx.HTTPError as err:  # cut mid-request: a failed drain
                        results.append(type(err).__name__)
                        return
                    results.append(r.status_code)

        keep = httpx.Client(base_url=s.url, timeout=5)  # a keep-alive client
        assert keep.get("/readyz").status_code == 200
        t = threading.Thread(target=slow)
        t.start()
        time.sleep(0.5)
        t0 = time.monotonic()
        s.proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        try:
            ready = keep.get("/readyz").status_code
        except httpx.HTTPError:
            ready = None  # the connection closed: not ready either
        assert ready != 200, "readiness still passes after SIGTERM"
        refused = False
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not refused:
            try:
                httpx.get(f"{s.url}/livez", timeout=1)
            except httpx.ConnectError:
                refused = True
            except httpx.TimeoutException:
                pytest.fail("a new connection hangs after SIGTERM instead of being refused")
            time.sleep(0.1)
        assert refused, "new connections are still accepted 10 s after SIGTERM"
        t.join(timeout=60)
        s.proc.wait(timeout=40)
        elapsed = time.monotonic() - t0
        keep.close()
        assert results and results[0] == 200, results
        assert all(r in (200, "refused") for r in results), f"a request was cut: {results}"
        assert elapsed < 35, f"exit took {elapsed:.1f} s"
