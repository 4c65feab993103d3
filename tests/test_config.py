"""params.yaml is validated once, at load, with errors that name the key."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml

from credit_scoring.config import ConfigError, Params, load_params, parse_params

REPO = Path(__file__).resolve().parents[1]


def test_repo_params_yaml_is_valid_and_matches_the_embedded_defaults():
    """The committed params.yaml loads, and equals the defaults in the typed models."""
    params = load_params(REPO / "params.yaml")
    assert params == Params(), "params.yaml drifted from the defaults declared in config.py"
    assert params.base.observation_date == dt.date(2025, 1, 1)


def test_unknown_key_fails_with_a_message_naming_it():
    with pytest.raises(ConfigError, match=r"simulate\.n_user: unknown key"):
        parse_params({"simulate": {"n_user": 10}})


def test_mistyped_value_fails_with_a_message_naming_the_key():
    with pytest.raises(ConfigError, match=r"simulate\.n_users: .*'many'"):
        parse_params({"simulate": {"n_users": "many"}})


def test_out_of_range_value_is_refused():
    with pytest.raises(ConfigError, match=r"simulate\.default_rate"):
        parse_params({"simulate": {"default_rate": 1.5}})


def test_windows_must_include_the_core_windows():
    with pytest.raises(ConfigError, match=r"features\.windows.*missing \[365\]"):
        parse_params({"features": {"windows": [30, 90]}})


def test_params_are_frozen_so_stages_cannot_change_them():
    params = Params()
    with pytest.raises(Exception, match="frozen"):
        params.base.seed = 1  # type: ignore[misc]


def test_load_params_reports_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="params file not found"):
        load_params(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("base: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_params(bad)
    (tmp_path / "list.yaml").write_text(yaml.safe_dump([1, 2]))
    with pytest.raises(ConfigError, match="mapping"):
        load_params(tmp_path / "list.yaml")


def test_unknown_key_suggests_the_closest_known_key_at_any_depth():
    """A typo gets "did you mean" from the keys valid at that place (sections, lists too)."""
    with pytest.raises(
        ConfigError,
        match=r"train\.lightgbm\.num_leave: unknown key \(did you mean 'num_leaves'\?\)",
    ):
        parse_params({"train": {"lightgbm": {"num_leave": 31}}})
    tier = {"name": "x", "min_score": 600, "min_scor": 1}
    with pytest.raises(
        ConfigError, match=r"tiers\.0\.min_scor: unknown key \(did you mean 'min_score'\?\)"
    ):
        parse_params({"decision": {"tiers": [tier]}})
    with pytest.raises(ConfigError, match=r"simulate\.zzz: unknown key$"):
        parse_params({"simulate": {"zzz": 1}})  # nothing close: no guess


def test_errors_in_a_params_file_name_their_line(tmp_path):
    """A bad value or key in params.yaml is reported with the line it is on."""
    path = tmp_path / "params.yaml"
    path.write_text("base:\n  seed: 1\ntrain:\n  lightgbm:\n    learning_rat: 0.1\n")
    with pytest.raises(
        ConfigError,
        match=r"line 5: train\.lightgbm\.learning_rat: unknown key "
        r"\(did you mean 'learning_rate'\?\)",
    ):
        load_params(path)


def test_broken_yaml_names_line_and_column(tmp_path):
    """A YAML syntax error gives file:line:column of the problem, in one line."""
    path = tmp_path / "params.yaml"
    path.write_text("train:\n  lightgbm:\n    num_leaves: 31\n   bad: [\n")
    with pytest.raises(ConfigError, match=r"params\.yaml:4:4: not valid YAML: ") as err:
        load_params(path)
    assert "\n" not in str(err.value)
