"""Shared test setup: telemetry off, and nothing touches the user's stores or working tree."""

from __future__ import annotations

import pytest

from credit_scoring.telemetry import disable_telemetry

disable_telemetry()


@pytest.fixture(autouse=True)
def _isolated_cwd(tmp_path, monkeypatch):
    """Each test runs in its own temporary folder, so relative output paths never hit the repo."""
    monkeypatch.chdir(tmp_path)
    yield
