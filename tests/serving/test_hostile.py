"""Hostile input against a real `bentoml serve` (issue #14, findings 3, 5, 6 and 8).

Every case gets its 4xx, and the service stays healthy meanwhile: a probe thread asks
/livez every 20 ms during the case and the slowest answer must come in under 100 ms
(measured, not assumed), then /readyz is 200. The server is the one of conftest (two
workers, the small model, serve.max_batch = 50).
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import subprocess
import sys
import threading
import time
import uuid
from urllib.parse import urlparse

import httpx
import pytest

from credit_scoring.serving.contract import (
    MAX_CONTACTS,
    MAX_EVENTS,
    MAX_LATE_PER_CONTACT,
    MAX_LATE_REPAYMENTS,
)
from credit_scoring.serving.middleware import Limits

LIMITS = Limits()
HEALTH_MS = 100.0


_PROBE = """
import sys, time, httpx
with httpx.Client(base_url=sys.argv[1], timeout=5) as c:
    while True:
        t0 = time.perf_counter()
        try:
            ok = c.get("/livez").status_code == 200
        except httpx.HTTPError:
            ok = False
        ms = (time.perf_counter() - t0) * 1000
        print(ms if ok else "inf", flush=True)
        time.sleep(0.02)
"""


class HealthProbe:
    """/livez every 20 ms from a separate process (the test's own work, e.g. encoding 50 MB
    of JSON, must not slow the probe); ``worst_ms`` is the slowest answer (a failure or a
    timeout counts as infinitely slow)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.times_ms: list[float] = []
        self._proc: subprocess.Popen | None = None

    def __enter__(self) -> HealthProbe:
        self._proc = subprocess.Popen(
            [sys.executable, "-c", _PROBE, self.url], stdout=subprocess.PIPE, text=True
        )
        assert self._proc.stdout is not None
        self.times_ms.append(float(self._proc.stdout.readline()))  # it runs before the case
        return self

    def __exit__(self, *exc) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        self.times_ms.append(float(self._proc.stdout.readline()))  # and once after it
        self._proc.terminate()
        out, _ = self._proc.communicate(timeout=10)
        self.times_ms += [float(x) for x in out.split()]

    @property
    def worst_ms(self) -> float:
        return max(self.times_ms)


@pytest.fixture
def healthy(served, server):
    """Yields; afterwards: the health probe answered < 100 ms throughout the test and the
    service is ready."""
    with HealthProbe(served.url) as probe:
        yield probe
    assert len(probe.times_ms) >= 2, "the probe ran"
    assert probe.worst_ms < HEALTH_MS, (
        f"a health check took {probe.worst_ms:.0f} ms (>= {HEALTH_MS:.0f} ms) during the case"
    )
    assert server.get("/readyz").status_code == 200, "the service is still ready"


def _raw_request(url: str, head: bytes, body_chunks, timeout: float = 30) -> tuple[int, float]:
    """Send ``head`` then the chunks on a raw socket; (status, seconds to the status line).
    Stops sending as soon as the server answers (the answer may come before the body)."""
    u = urlparse(url)
    with socket.create_connection((u.hostname, u.port), timeout=timeout) as s:
        s.sendall(head)
        t0 = time.perf_counter()
        s.setblocking(False)
        data = b""
        for chunk in body_chunks:
            with contextlib.suppress(BlockingIOError):
                data += s.recv(65536)
            if data:
                break
            try:
                s.sendall(chunk)
            except (BlockingIOError, BrokenPipeError, ConnectionResetError):
                time.sleep(0.01)
        s.setblocking(True)
        s.settimeout(timeout)
        while b"\r\n" not in data:
            more = s.recv(65536)
            if not more:
                break
            data += more
        status = int(data.split(b" ", 2)[1]) if data else 0
        return status, time.perf_counter() - t0


# --------------------------------------------------------------------------- finding 3


def test_a_declared_huge_body_gets_413_before_it_is_sent(served, healthy):
    """Content-Length of 106 MB: 413 at once, after the first KB (nothing more is read)."""
    head = (
        b"POST /score_batch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 111149056\r\n\r\n"
    )
    status, _ = _raw_request(served.url, head, [b'{"people": [' + b"{}," * 300])
    assert status == 413


def test_a_streamed_body_over_the_limit_gets_413_before_its_end(served, healthy):
    """A chunked body (no Content-Length) is cut at the limit: the 413 comes back while
    the client still has most of its 50 MB to send."""
    head = (
        b"POST /score_events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    mb = b"x" * 2**20
    chunk = b"%x\r\n%s\r\n" % (len(mb), mb)
    sent = {"n": 0}

    def chunks():
        for _ in range(50):
            sent["n"] += 1
            yield chunk
            time.sleep(0.01)
        yield b"0\r\n\r\n"

    status, _ = _raw_request(served.url, head, chunks())
    assert status == 413
    assert sent["n"] < 40, f"the server read {sent['n']} MB before answering"


def test_a_batch_over_max_batch_is_413_from_a_count_not_from_models(server, max_batch, healthy):
    """The issue's 135,501-person batch (`{}` each): 413 naming people and the limit."""
    r = server.post("/score_batch", json={"people": [{}] * 135_501})
    assert r.status_code == 413, r.text
    assert "135501 people" in r.json()["error"] and f"at most {max_batch}" in r.json()["error"]
    assert r.json()["detail"][0]["loc"] == ["people"]


def test_the_issues_late_repayment_flood_is_refused(server, healthy):
    """100 contacts x 10,000 late repayments (50 MB): 413 from the body limit; a flood
    inside the body limit is refused by the per-contact and the total caps (400)."""
    late = [{"event_time": "2024-09-01", "days_past_due": 45}]
    contacts = [
        {"contact_id": f"C{i}", "since_date": "2022-01-01", "late_repayments": late * 10_000}
        for i in range(100)
    ]
    body = {"observation_date": "2025-01-01", "contacts": contacts}
    assert server.post("/score_events", json=body).status_code == 413
    per_contact = [
        {**c, "late_repayments": late * (MAX_LATE_PER_CONTACT + 1)} for c in contacts[:1]
    ]
    r = server.post("/score_events", json={**body, "contacts": per_contact})
    assert r.status_code == 400 and "late_repayments" in r.text, r.text
    n = MAX_LATE_REPAYMENTS // MAX_LATE_PER_CONTACT + 1
    total = [{**c, "late_repayments": late * MAX_LATE_PER_CONTACT} for c in contacts[:n]]
    r = server.post("/score_events", json={**body, "contacts": total})
    assert r.status_code == 400 and f"at most {MAX_LATE_REPAYMENTS}" in r.text, r.text


@pytest.mark.parametrize(
    ("field", "item", "cap"),
    [
        (
            "events",
            {"event_time": "2024-01-01", "event_type": "purchase", "amount": 1.0},
            MAX_EVENTS,
        ),
        ("contacts", None, MAX_CONTACTS),
    ],
)
def test_events_and_contacts_over_their_caps_are_400(server, field, item, cap, healthy):
    if item is None:
        items = [{"contact_id": f"C{i}", "since_date": "2022-01-01"} for i in range(cap + 1)]
    else:
        items = [item] * (cap + 1)
    r = server.post("/score_events", json={"observation_date": "2025-01-01", field: items})
    assert r.status_code == 400, r.text[:300]
    assert field in r.text and f"at most {cap}" in r.text


def test_health_checks_answer_while_the_largest_accepted_bodies_are_parsed(server, healthy):
    """Four concurrent bodies just under the body limit (events at their cap, a batch of
    the largest people): parsing happens off the event loop, so /livez keeps answering."""
    events = [
        {
            "event_time": "2024-06-01T10:00:00",
            "event_type": "purchase",
            "amount": 12.5,
            "category": "groceries",
            "receipt_confirmed": True,
        }
    ] * MAX_EVENTS
    body = {"observation_date": "2025-01-01", "events": events, "with_reasons": False}
    raw = json.dumps(body).encode()
    assert len(raw) < LIMITS.max_body_bytes
    results: list[int] = []

    def post() -> None:
        with httpx.Client(base_url=str(server.base_url), timeout=60) as c:
            results.append(
                c.post(
                    "/score_events", content=raw, headers={"content-type": "application/json"}
                ).status_code
            )

    threads = [threading.Thread(target=post) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [200] * 4


# --------------------------------------------------------------------------- finding 5


def test_a_400_is_logged_at_info_with_field_names_and_no_values(served, server, healthy):
    """The rejected values (an id, gender, a birth year) never reach the log, nor a
    traceback; the log names the route, the fields and the kinds of error."""
    secret = f"ID-{uuid.uuid4().hex}"
    body = {
        "observation_date": "2025-01-01",
        "profile": {"gender": "F-" + secret, "birth_year": 1987},
        "contacts": [{"contact_id": secret, "since_date": "2022-01-01"}] * 2,
    }
    r = server.post("/score_events", json=body)
    assert r.status_code == 400 and "gender" in r.text
    assert secret not in r.text, "the 400 body does not echo the input"
    time.sleep(0.5)
    log = served.log_text()
    assert secret not in log and "1987" not in log, "a rejected value reached the log"
    assert "Traceback" not in log
    lines = [line for line in log.splitlines() if "400 /score_events" in line]
    assert lines and "[INFO]" in lines[-1] and "profile.gender: extra_forbidden" in lines[-1]


# --------------------------------------------------------------------------- finding 6


def test_random_404_paths_do_not_grow_the_metrics(server, healthy):
    """300 random paths: each is a 404, /metrics stays about the same size and names none
    of them (they count under the one label 'other')."""
    server.get("/nope-warm-up")
    before = len(server.get("/metrics").text)
    paths = [f"/{uuid.uuid4().hex}/{uuid.uuid4().hex}" for _ in range(300)]
    for p in paths:
        assert server.get(p).status_code == 404
    text = server.get("/metrics").text
    assert not any(p in text for p in paths)
    assert 'endpoint="other"' in text
    assert len(text) < before * 1.1 + 2000, f"/metrics grew from {before} to {len(text)} bytes"


# --------------------------------------------------------------------------- finding 8


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/score", {"features": {"n_late_365d": "5"}}, "n_late_365d"),
        ("/score", {"features": {"n_late_365d": True}}, "n_late_365d"),
        ("/score", {"features": {"identity_verified": 1}, "with_reasons": 1}, "with_reasons"),
        ("/advice", {"features": {}, "max_actions": "3"}, "max_actions"),
        ("/advice", {"features": {}, "max_actions": 2.0}, "max_actions"),
        ("/score_events", {"observation_date": 20250101}, "observation_date"),
        (
            "/score_events",
            {
                "observation_date": "2025-01-01",
                "events": [{"event_time": 1700000000, "event_type": "purchase", "amount": 1}],
            },
            "event_time",
        ),
        (
            "/score_events",
            {"observation_date": "2025-01-01", "profile": {"declared_income": "8000"}},
            "declared_income",
        ),
    ],
)
def test_strings_and_flags_are_not_coerced_into_numbers(server, path, body, field, healthy):
    r = server.post(path, json=body)
    assert r.status_code == 400, f"{body}: {r.status_code} {r.text[:200]}"
    assert field in r.text


@pytest.mark.parametrize("day", ["registered_date", "employment_start_date"])
def test_profile_dates_after_the_observation_date_are_400(server, day, healthy):
    body = {"observation_date": "2025-01-01", "profile": {day: "2025-06-01"}}
    r = server.post("/score_events", json=body)
    assert r.status_code == 400 and day in r.text, r.text
    ok = {"observation_date": "2025-01-01", "profile": {day: "2025-01-01"}}
    assert server.post("/score_events", json=ok).status_code == 200


@pytest.mark.parametrize(
    "content_type",
    [
        "multipart/form-data",
        "multipart/form-data; boundary=xyz",
        "application/x-www-form-urlencoded",
        "text/plain",
        "application/vnd.bentoml+pickle",
        "application/xml",
    ],
)
def test_content_types_other_than_json_are_415(server, content_type, healthy):
    """Including multipart without a boundary (a 500 before) and BentoML's pickle."""
    for path in ("/score", "/score_batch", "/score_events", "/advice", "/model"):
        r = server.post(path, content=b"--xyz\r\n\r\n", headers={"content-type": content_type})
        assert r.status_code == 415, f"{path} {content_type}: {r.status_code} {r.text[:200]}"
        assert "application/json" in r.json()["error"]


def test_the_openapi_document_has_every_response_shape_and_an_example(server, healthy):
    doc = server.get("/docs.json").json()
    schemas = doc["components"]["schemas"]
    for path in ("/score", "/score_batch", "/score_events", "/advice", "/model"):
        op = doc["paths"][path]["post"]
        ok = op["responses"]["200"]["content"]["application/json"]["schema"]
        assert ok.get("properties") or ok.get("$ref"), f"{path}: 200 documented as {ok}"
        for status in ("400", "401", "413", "415", "429", "504"):
            assert status in op["responses"], f"{path}: {status} undocumented"
        assert "example" in op["requestBody"]["content"]["application/json"], path
    detail = schemas["ValidationErrorResponse"]["properties"]["detail"]
    assert detail["type"] == "array", "the 400 detail is a list, as sent"
    assert "decisions" in json.dumps(doc["paths"]["/score_batch"]["post"]["responses"]["200"])


def test_the_swagger_page_loads_no_third_party_script(server, healthy):
    html = server.get("/").text
    assert "swagger-ui" in html
    assert "googletagmanager" not in html and "gtm" not in html.lower()
    sources = re.findall(r"""<(?:script|link|iframe)[^>]*(?:src|href)=["']([^"']+)""", html)
    assert sources and all(not re.match(r"(https?:)?//", s) for s in sources), sources
    for s in sources:  # and every asset it loads is served
        assert server.get("/" + s.removeprefix("./")).status_code == 200, s
