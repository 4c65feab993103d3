"""Typed pipeline parameters: params.yaml is validated once, here, and passed down.

Every section is a frozen pydantic model with ``extra="forbid"`` so a misspelt or
unknown key fails at load with a message naming the key, instead of being silently
ignored deep inside a stage.
"""

from __future__ import annotations

import datetime as dt
import difflib
import math
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

DEFAULT_PARAMS_PATH = Path("params.yaml")


class ConfigError(ValueError):
    """params.yaml is missing, unreadable or does not match the typed models."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BaseParams(_Section):
    """Shared by every stage: randomness and the point in time the world is seen from."""

    seed: int = Field(42, ge=0, description="Seed for every random draw in the pipeline.")
    observation_date: dt.date = Field(
        dt.date(2025, 1, 1),
        description="Observation date of the newest cohort; older cohorts lie before it.",
    )


class AcceptanceParams(_Section):
    """A historical acceptance policy of the simulated lender (selection bias, issue #18)."""

    enabled: bool = Field(False, description="Apply the policy; false = everyone has an outcome.")
    approval_rate: float = Field(0.7, gt=0.0, le=1.0, description="Share of applicants approved.")
    old_model_noise: float = Field(
        1.0,
        ge=0.0,
        le=10.0,
        description="SD of the older model's error on the logit of the true PD (0 = perfect).",
    )
    grey_zone_share: float = Field(
        0.1,
        ge=0.0,
        le=0.5,
        description="Share of applicants in a band around the cut-off approved at random (50%).",
    )


class SimulateParams(_Section):
    """The synthetic behaviour world (the embedded default data)."""

    n_users: int = Field(60_000, gt=0, description="People in the population, all cohorts.")
    default_rate: float = Field(0.05, gt=0.0, lt=0.5, description="Target 12-month default rate.")
    n_cohorts: int = Field(6, ge=1, le=36, description="Observation dates (cohorts).")
    cohort_spacing_months: int = Field(2, ge=1, le=12, description="Months between cohorts.")
    history_months: int = Field(24, ge=3, le=120, description="Months of behaviour history.")
    performance_months: int = Field(12, ge=1, le=36, description="Outcome window length.")
    thin_file_share: float = Field(0.15, ge=0.0, le=1.0, description="Share of thin-file people.")
    missing_rate: float = Field(0.05, ge=0.0, le=0.5, description="Rate of missing profile facts.")
    contacts_mean: float = Field(4.0, ge=0.0, le=50.0, description="Mean contacts per person.")
    drift: float = Field(
        0.0,
        ge=-3.0,
        le=3.0,
        description="Shift of the newest cohort's creditworthiness (negative = riskier), "
        "in standard deviations; 0 means no drift.",
    )
    chunk_size: int = Field(50_000, ge=1_000, description="People generated per chunk.")
    acceptance: AcceptanceParams = Field(
        default_factory=AcceptanceParams,
        description="A historical acceptance policy hiding the outcomes of declined people "
        "(data/acceptance.py); off by default.",
    )


class LabelParams(_Section):
    """The label in the user's outcomes file: its column name and its horizon."""

    column: str = Field(
        "default_12m",
        min_length=1,
        description="Outcomes column holding the 0/1 default label (e.g. default_1m, "
        "default_24m, bad_loan); ingest writes it as the internal label default_12m.",
    )
    horizon_months: int = Field(
        12,
        ge=1,
        le=600,
        description="Months after the observation date the label covers (recorded in "
        "reports/data_quality.json; use the loan term for a life-of-loan label).",
    )


class DataParams(_Section):
    """Where the behaviour data comes from and where validated data goes."""

    input_dir: str = Field(
        "data/simulated",
        description="Folder with profiles/events/contacts/outcomes as CSV or Parquet. "
        "'data/simulated' is the simulate stage's output; point it at your own folder "
        "(docs/input-format.md) to use your own data.",
    )
    mode: Literal["auto", "events", "features"] = Field(
        "auto",
        description="What the input folder holds: 'events' (profiles, outcomes, events, "
        "contacts), 'features' (bring your own features: features.csv|parquet plus "
        "feature_metadata.yaml|csv), or 'auto' (features when both of those files are "
        "there, else events). docs/input-format.md.",
    )
    validated_dir: str = "data/validated"
    rejects_dir: str = "data/rejects"
    quality_report: str = "reports/data_quality.json"
    batch_rows: Annotated[int, Field(ge=1)] | None = Field(
        1_000_000,
        description="Rows of an input table validated and written at a time by ingest "
        "(bounded memory; outputs equal whatever the size); null reads whole tables.",
    )
    label: LabelParams = Field(default_factory=LabelParams)


class FeaturesParams(_Section):
    """Point-in-time features."""

    windows: list[Annotated[int, Field(gt=0, le=3650)]] = Field(
        default_factory=lambda: [30, 90, 180, 365],
        description="Look-back windows in days, all strictly before the observation date.",
    )
    chunk_people: int = Field(
        100_000,
        ge=1_000,
        description="People per chunk: the features stage streams one chunk's events at a "
        "time, so its peak memory grows with this (about 1.5 GiB per 100,000 people).",
    )
    output_dir: str = "data/features"

    @field_validator("windows")
    @classmethod
    def _must_contain_core_windows(cls, v: list[int]) -> list[int]:
        missing = {30, 90, 365} - set(v)
        if missing:
            raise ValueError(f"windows must include 30, 90 and 365 days; missing {sorted(missing)}")
        if len(set(v)) != len(v):
            raise ValueError(f"windows must be distinct; got {v}")
        return sorted(v)


class SplitParams(_Section):
    """How labelled rows are split into train, validation, calibration and test.

    ``method``: ``out_of_time`` (oldest periods train ... newest test), ``in_time`` (one
    snapshot: people drawn at random, stratified by label, a person's rows kept together)
    or ``auto`` (out of time when the data allows it, else in time, else a one-line
    refusal naming the counts). The cohort counts below count calendar ``period``s, not
    distinct dates, unless ``cutoffs`` are given.
    """

    method: Literal["auto", "out_of_time", "in_time"] = Field(
        "auto",
        description="auto picks the strongest validation the data allows and says why.",
    )
    period: Literal["date", "month", "quarter", "year"] = Field(
        "month",
        description="Out of time: labelled observation dates are grouped into these "
        "calendar periods, and the cohort counts count periods ('date' = each distinct date).",
    )
    cutoffs: list[dt.date] = Field(
        default_factory=list,
        description="Out of time by explicit dates [validation_start, calibration_start, "
        "test_start] (ascending); empty = by the period counts.",
    )
    test_cohorts: int = Field(1, ge=1, description="Newest periods held out for the final test.")
    calibration_cohorts: int = Field(1, ge=1, description="Periods before test: calibration.")
    validation_cohorts: int = Field(
        1, ge=1, description="Periods before calibration: early stopping and tuning."
    )
    gap_months: int = Field(
        0,
        ge=0,
        le=120,
        description="Out of time: rows observed less than this many months before the test "
        "window are left out of train/validation/calibration, so their outcomes (label "
        "horizon) end before the test starts. 0 = no gap.",
    )
    group_by_person: bool = Field(
        True, description="A person's rows never appear both in test and in an earlier slice."
    )
    min_rows: int = Field(50, ge=1, description="Fewest rows each slice must have.")
    min_defaults: int = Field(
        5, ge=1, description="Fewest defaults (and non-defaults) each slice must have."
    )
    in_time_validation: float = Field(0.2, gt=0, lt=1, description="In time: share of people.")
    in_time_calibration: float = Field(0.2, gt=0, lt=1, description="In time: share of people.")
    in_time_test: float = Field(0.2, gt=0, lt=1, description="In time: share of people.")

    @field_validator("cutoffs")
    @classmethod
    def _three_ascending(cls, v: list[dt.date]) -> list[dt.date]:
        if v and (len(v) != 3 or not v[0] < v[1] < v[2]):
            raise ValueError(
                "cutoffs must be 3 ascending dates [validation_start, calibration_start, "
                f"test_start] or empty; got {[d.isoformat() for d in v]}"
            )
        return v

    @model_validator(mode="after")
    def _train_share_left(self) -> SplitParams:
        held = self.in_time_validation + self.in_time_calibration + self.in_time_test
        if held >= 0.9:
            raise ValueError(
                f"in_time_validation + in_time_calibration + in_time_test must leave at least "
                f"10% of people for training; got {held:.2f}"
            )
        return self


class LightGBMParams(_Section):
    """LightGBM hyperparameters (a subset; the rest are LightGBM defaults)."""

    learning_rate: float = Field(0.03, gt=0, le=1)
    num_leaves: Annotated[int, Field(ge=2, le=4096)] | Literal["auto"] = Field(
        "auto",
        description="Leaves per tree; 'auto' scales with the training rows: "
        "clip(rows / 100, 4, 15) (modelling.train.size_params).",
    )
    min_child_samples: Annotated[int, Field(ge=1)] | Literal["auto"] = Field(
        "auto",
        description="Fewest rows per leaf; 'auto' scales with the training rows: "
        "clip(rows / 250, 5, 100), so 25,000 rows or more get 100 and 400 rows get 5.",
    )
    feature_fraction: float = Field(0.8, gt=0, le=1)
    bagging_fraction: float = Field(0.8, gt=0, le=1)
    bagging_freq: int = Field(1, ge=0)
    lambda_l2: float = Field(5.0, ge=0)
    max_bin: int = Field(255, ge=2)
    num_boost_round: int = Field(2000, ge=1)
    early_stopping_rounds: int = Field(100, ge=1)
    monotone_constraints_method: str = Field(
        "basic",
        pattern="^(basic|intermediate|advanced)$",
        description="basic is strict; LightGBM 4.7's intermediate/advanced can break "
        "constraints when features have missing values (then training falls back to basic).",
    )


class TuneParams(_Section):
    """Optional random search of a few hyperparameters within a time budget."""

    enabled: bool = False
    n_trials: int = Field(12, ge=1)
    time_budget_s: float = Field(300.0, gt=0)


class TrainParams(_Section):
    """Model training: LightGBM with monotone constraints from the feature metadata."""

    lightgbm: LightGBMParams = Field(default_factory=LightGBMParams)
    use_monotone_constraints: bool = True
    reject_inference: str = Field(
        "reweight",
        pattern="^(none|reweight|augment|parcel)$",
        description="How declined applicants (outcomes.decision) enter training "
        "(modelling/reject_inference.py); none = approved only. Without declined rows "
        "every method trains exactly as none.",
    )
    tune: TuneParams = Field(default_factory=TuneParams)
    stop_if_chance: bool = Field(
        True,
        description="Stop training (one line) when the model never splits or its validation "
        "AUC's 95% interval includes 0.5 (no better than chance).",
    )
    refit_on_all: bool = Field(
        True,
        description="After validation, refit the deployed model on every labelled cohort "
        "(booster on all but the test cohort, calibrator on it; README 'Validated model and "
        "deployed refit'); the validated model is kept beside it. false = deploy the "
        "validated model.",
    )
    refit_rounds: Literal["rows_ratio", "unchanged"] = Field(
        "unchanged",
        description="Boosting rounds of the refit: the validated best iteration (unchanged), "
        "or that x (refit rows / training rows), at most lightgbm.num_boost_round "
        "(rows_ratio; README 'Validated model and deployed refit' has both measured).",
    )
    refit_min_correlation: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="Refuse a refit whose test-cohort scores rank people differently from the "
        "validated model's (Spearman correlation below this).",
    )
    baseline_max_bins: int = Field(8, ge=2, le=50, description="WoE bins per feature, baseline.")
    baseline_C: float = Field(0.1, gt=0, description="Inverse L2 strength, baseline scorecard.")
    output_dir: str = "models"


class CalibrateParams(_Section):
    """Probability calibration on its own out-of-time slice."""

    method: str = Field(
        "sigmoid",
        pattern="^(auto|isotonic|sigmoid)$",
        description="sigmoid (Platt) keeps scores smooth and dimension points an exact linear "
        "split; auto = isotonic only if its cross-validated Brier is clearly better.",
    )
    ece_bins: int = Field(10, ge=2, le=100)


class GateParams(_Section):
    """Promotion gate: challenger -> champion only when all conditions hold."""

    min_auc_gain: float = Field(
        0.0,
        ge=-0.05,
        le=0.1,
        description="Margin the lower confidence bound of AUC(challenger) - AUC(champion), "
        "both re-scored on the same test cohort, must exceed (0: significantly better).",
    )
    confidence: float = Field(
        0.95, gt=0.5, lt=1.0, description="Two-sided confidence of the DeLong interval."
    )
    on_unscorable_champion: Literal["refuse", "promote"] = Field(
        "refuse",
        description="When the champion cannot be re-scored on the test cohort: refuse "
        "(keep it; a person compares them) or promote on the challenger's own merits.",
    )
    max_ece: float = Field(0.02, gt=0, description="Calibration error bound on the test cohort.")
    max_psi: float = Field(0.10, gt=0, description="Score stability bound, train vs test.")


class ScoreParams(_Section):
    """Points-to-double-the-odds scaling of the calibrated probability (DOMAIN.md)."""

    base_score: float = Field(620.0, description="Score at the base odds.")
    base_odds: float = Field(19.0, gt=0, description="Good:bad odds that get base_score (PD 5%).")
    pdo: float = Field(40.0, gt=0, description="Points to double the odds of being good.")
    min_score: int = 350
    max_score: int = 950
    bands: dict[str, int] = Field(
        default_factory=lambda: {
            "poor": 350,
            "fair": 550,
            "good": 600,
            "very good": 650,
            "excellent": 700,
        },
        description="Band name -> lowest score in the band.",
    )


class LimitParams(_Section):
    """Huabei-style credit-limit policy (pure function of score, PD and income)."""

    cutoff_score: int = Field(550, description="No credit below this score.")
    min_limit: float = Field(500.0, gt=0, description="Smallest limit granted, CNY.")
    max_limit: float = Field(50_000.0, gt=0, description="Largest limit granted, CNY.")
    rounding: float = Field(100.0, gt=0, description="Limits are rounded down to this step.")
    lgd: float = Field(0.6, gt=0, le=1, description="Loss given default.")
    loss_budget: float = Field(
        300.0, gt=0, description="Per-person expected-loss budget: PD x LGD x limit <= this, CNY."
    )
    income_multiple_at_cutoff: float = Field(
        0.5, ge=0, description="Limit as a multiple of monthly repayment capacity at the cut-off."
    )
    income_multiple_at_top: float = Field(
        4.0, ge=0, description="Multiple at top_score and above (linear in between)."
    )
    top_score: int = Field(800, description="Score from which the top multiple applies.")
    verified_income_weight: float = Field(
        1.0, ge=0, le=1, description="Share of verified income counted as capacity."
    )
    declared_income_weight: float = Field(
        0.4, ge=0, le=1, description="Share of declared (unverified) income counted."
    )
    fallback_income: float = Field(
        500.0,
        ge=0,
        description="Capacity floor, CNY/month: the capacity assumed when no income is known "
        "and the least a declared or verified income counts for, so that hiding or lowering "
        "one's income never raises the limit.",
    )
    max_unverified_capacity: float = Field(
        2000.0,
        gt=0,
        description="Most capacity, CNY/month, an unverified (declared) income counts for: a "
        "claim without documents buys at most this much, whatever is declared. Must be >= "
        "fallback_income.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> LimitParams:
        self.grantable_range()
        return self

    def grantable_range(self) -> tuple[float, float]:
        """Refuse an inconsistent policy; return the smallest and largest grantable limits.

        ``(lowest, highest)``: ``min_limit`` rounded up and ``max_limit`` rounded down to a
        multiple of ``rounding``. Checked here, once, when params are read.
        """
        if self.top_score <= self.cutoff_score:
            raise ValueError(
                "top_score must be > cutoff_score; "
                f"got top_score={self.top_score}, cutoff_score={self.cutoff_score}"
            )
        if self.income_multiple_at_top < self.income_multiple_at_cutoff:
            raise ValueError(
                "income_multiple_at_top must be >= income_multiple_at_cutoff (else a higher "
                f"score could get a lower limit); got {self.income_multiple_at_top} < "
                f"{self.income_multiple_at_cutoff}"
            )
        if self.verified_income_weight < self.declared_income_weight:
            raise ValueError(
                "verified_income_weight must be >= declared_income_weight (else verifying "
                f"the declared income would lower the limit); got {self.verified_income_weight}"
                f" < {self.declared_income_weight}"
            )
        if self.max_unverified_capacity < self.fallback_income:
            raise ValueError(
                "max_unverified_capacity must be >= fallback_income (a declared income never "
                f"counts for less than the floor); got {self.max_unverified_capacity} < "
                f"{self.fallback_income}"
            )
        step = self.rounding
        lowest = math.ceil(self.min_limit / step) * step
        highest = math.floor(self.max_limit / step) * step
        if lowest > highest:
            raise ValueError(
                "min_limit must be <= max_limit with at least one multiple of rounding between "
                f"them; got min_limit={self.min_limit}, max_limit={self.max_limit}, "
                f"rounding={step}"
            )
        return lowest, highest


class TierParams(_Section):
    """One benefit tier: unlocked at and above min_score."""

    name: str
    min_score: int = Field(ge=350, le=950)
    description: str = ""


def _default_tiers() -> list[TierParams]:
    return [
        TierParams(
            name="deposit_free_bike", min_score=600, description="Shared bikes without a deposit."
        ),
        TierParams(
            name="deposit_free_car_rental",
            min_score=650,
            description="Car rental without a deposit.",
        ),
        TierParams(
            name="deposit_free_flat_rental",
            min_score=650,
            description="Flat rental without a deposit.",
        ),
        TierParams(
            name="premium_perks",
            min_score=700,
            description="Lower interest, faster approval and member perks.",
        ),
    ]


class DecisionParams(_Section):
    """What each decision carries beyond the score."""

    limit: LimitParams = Field(default_factory=LimitParams)
    tiers: list[TierParams] = Field(default_factory=_default_tiers)
    max_reasons: int = Field(
        4,
        ge=1,
        le=4,
        description="Most adverse-action reasons per decision (a notice gives 1 to 4; every "
        "declined person gets at least one).",
    )


class EvaluateParams(_Section):
    """Checks of the evaluation stage."""

    fail_on_non_monotone_bands: bool = Field(
        True, description="Stop the pipeline if the default rate does not fall band by band."
    )
    min_band_people: int = Field(
        100, ge=0, description="Bands with fewer test people are left out of that check."
    )
    band_tolerance_z: float = Field(
        1.96,
        ge=0,
        description="A better band's default rate may exceed the previous band's by up to "
        "this many standard errors (noise) before the band check fails.",
    )
    bootstrap_samples: int = Field(
        200, ge=0, description="Bootstrap resamples for the metrics' intervals (0 = none)."
    )


class FairnessParams(_Section):
    """Fairness report on the test cohort (evaluate stage) and its optional promotion block.

    Gaps compare known groups with at least ``min_group_size`` people; approval (limit > 0)
    is the favourable outcome. Crossing a bound is reported loudly; it blocks promotion only
    when ``block_promotion`` is true.
    """

    attributes: list[str] = Field(
        default_factory=lambda: ["gender", "age_band"],
        description="Protected attributes (columns of data/features/protected.parquet).",
    )
    min_group_size: int = Field(
        300,
        ge=1,
        description="Groups with fewer test people are reported but not compared (too noisy: "
        "at 300 people an approval rate has a standard error of about 2 points).",
    )
    max_demographic_parity_difference: float = Field(
        0.10, ge=0, le=1, description="Largest gap in approval rate between compared groups."
    )
    min_demographic_parity_ratio: float = Field(
        0.80,
        ge=0,
        le=1,
        description="Smallest ratio of approval rates (lowest / highest): the four-fifths rule.",
    )
    max_equal_opportunity_difference: float = Field(
        0.10,
        ge=0,
        le=1,
        description="Largest gap in approval rate among people who did not default.",
    )
    max_calibration_gap: float = Field(
        0.02,
        ge=0,
        le=1,
        description="Largest |mean PD - observed default rate| of any compared group.",
    )
    block_promotion: bool = Field(
        False, description="Refuse promotion to champion when any fairness bound is crossed."
    )

    @field_validator("attributes")
    @classmethod
    def _known_attributes(cls, v: list[str]) -> list[str]:
        allowed = {"gender", "age_band"}
        unknown = [a for a in v if a not in allowed]
        if unknown or not v or len(set(v)) != len(v):
            raise ValueError(f"attributes must be distinct names from {sorted(allowed)}; got {v}")
        return v


class StabilityParams(_Section):
    """Score stability: month-over-month score changes of people whose behaviour held still."""

    lag_days: int = Field(
        30, ge=1, le=365, description="Compare the score at T with the score at T - lag_days."
    )
    max_p90_change_points: float = Field(
        20.0,
        gt=0,
        description="Bound on the 90th percentile of |score(T) - score(T - lag)| among people "
        "with no material change of behaviour between the two dates.",
    )


class RobustnessParams(_Section):
    """Manipulation resistance: cheap activity added to real test-cohort people must not
    buy a large score gain (``credit-scoring robustness``)."""

    sample_people: int = Field(
        2000, ge=10, description="Test-cohort people the gaming scenarios are applied to."
    )
    window_days: int = Field(
        30, ge=1, le=365, description="Cheap activity is added in these days before T."
    )
    max_gain_points: float = Field(
        10.0, gt=0, description="Most score points cheap activity may buy (see gain_quantile)."
    )
    gain_quantile: float = Field(
        0.99,
        gt=0.5,
        le=1.0,
        description="This quantile of each scenario's gains must be <= max_gain_points: at "
        "most 1 - gain_quantile of people may buy more (1.0 = nobody may).",
    )
    good_contacts: int = Field(
        5, ge=1, le=50, description="Contacts with top scores added in the contacts scenario."
    )
    fail_on_breach: bool = Field(
        True, description="Stop the pipeline (and so registration) when a bound is broken."
    )
    slice: Literal["development", "test"] = Field(
        "development",
        description="Whose people the audit uses: development (validation + calibration "
        "slices), so gaming fixes are never chosen on the final test cohort; test = the old "
        "behaviour.",
    )
    stability: StabilityParams = Field(default_factory=StabilityParams)


class MlflowParams(_Section):
    """Tracking and registry. The env var MLFLOW_TRACKING_URI overrides tracking_uri."""

    tracking_uri: str = "sqlite:///mlflow.db"
    experiment: str = "credit-scoring"
    model_name: str = "credit-scoring"


class ServeAuthParams(_Section):
    """Who may call the service (every route but /healthz, /livez and /readyz)."""

    mode: Literal["api_key", "trusted_header", "none"] = Field(
        "api_key",
        description="api_key: bearer tokens checked against the hashed keys file; "
        "trusted_header: a gateway (OAuth2 proxy, mTLS ingress) authenticates and names the "
        "client in `trusted_header`; none: no authentication, for local use only (env "
        "CREDIT_SCORING_AUTH overrides).",
    )
    keys_file: str = Field(
        "secrets/api_keys.json",
        min_length=1,
        description="Hashed API keys (written by `credit-scoring api-key mint`); env "
        "CREDIT_SCORING_API_KEYS_FILE overrides the path, CREDIT_SCORING_API_KEYS holds the "
        "same JSON inline.",
    )
    trusted_header: str = Field(
        "X-Authenticated-Client",
        pattern=r"^[A-Za-z0-9-]+$",
        description="Header naming the client in trusted_header mode (set by the gateway).",
    )


class ServeAuditParams(_Section):
    """The decision audit log: every decision the service makes, in a database."""

    enabled: bool = Field(
        True,
        description="Log every decision. false (or env CREDIT_SCORING_AUDIT=off) is for "
        "benchmarks and local development only, and is logged at WARNING at start.",
    )

    db_url: str | None = Field(
        None,
        description="SQLAlchemy URL (postgresql+psycopg://...); null means SQLite at "
        "`sqlite_path`. Env CREDIT_SCORING_AUDIT_DB_URL overrides (keep passwords there).",
    )
    sqlite_path: str = Field(
        "audit/decisions.sqlite3", min_length=1, description="SQLite file of the default log."
    )
    queue_size: int = Field(
        10_000,
        ge=1,
        le=1_000_000,
        description="Decisions waiting for the writer; a full queue answers 503 (a decision "
        "is never returned unlogged). Also the most a crash can lose.",
    )
    batch_size: int = Field(500, ge=1, le=10_000, description="Most rows per insert.")
    flush_seconds: float = Field(
        0.2, gt=0, le=60, description="Longest a queued decision waits before it is written."
    )
    retention_days: int = Field(
        2555,
        ge=1,
        description="`credit-scoring audit-log purge` deletes decisions older than this "
        "(default 7 years).",
    )


class ServeParams(_Section):
    """The BentoML service and its packaging (`credit-scoring package`)."""

    max_batch: int = Field(
        1000, ge=1, le=100_000, description="Most people one /score_batch call may carry."
    )
    bentoml_home: str | None = Field(
        "bentoml_store",
        description="BentoML home (model and bento stores), relative to the project: one "
        "store per clone, so another clone's `package` never changes what this one serves; "
        "env BENTOML_HOME overrides; null means BentoML's default (~/bentoml, shared).",
    )
    alias: str = Field("champion", description="Registry alias of the MLflow model to package.")
    build: bool = Field(True, description="Also build the Bento from bentofile.yaml.")
    host: str = Field(
        "127.0.0.1",
        min_length=1,
        description="Address `bentoml serve --host` should bind (loopback by default; put a "
        "TLS-terminating proxy or gateway in front to expose it).",
    )
    config_file: str = Field(
        "serve_config.json",
        min_length=1,
        description="Where `package` pins the served model (exact BentoML tag, registry "
        "version, run id) and the auth/audit settings; the service reads it at start "
        "(env CREDIT_SCORING_SERVE_CONFIG overrides the path).",
    )
    auth: ServeAuthParams = Field(default_factory=ServeAuthParams)
    audit: ServeAuditParams = Field(default_factory=ServeAuditParams)


class AdviceParams(_Section):
    """Advice: the changes within a person's power that would raise their score most."""

    max_actions: int = Field(3, ge=1, le=10, description="Most actions advised per person.")
    min_gain_points: int = Field(
        1, ge=1, description="Smallest score gain (points) worth advising an action for."
    )


class DaskParams(_Section):
    """The Dask engine (``engine: dask``): where the cluster is and how work is cut."""

    scheduler_address: str = Field(
        "",
        description="Scheduler of a running cluster, e.g. tcp://host:8786; empty starts a "
        "LocalCluster (worker processes on this machine) for the run and stops it after.",
    )
    n_workers: int = Field(2, ge=1, le=512, description="LocalCluster worker processes.")
    threads_per_worker: int = Field(
        1, ge=1, le=256, description="LocalCluster threads per worker (also LightGBM's threads)."
    )
    memory_limit: str = Field(
        "4GiB",
        min_length=1,
        description="LocalCluster memory per worker (Dask spills, then pauses, near it); "
        "'auto' shares the machine's memory among the workers.",
    )
    people_per_partition: int = Field(
        25_000, ge=100, description="People whose features one task computes."
    )
    connect_timeout_s: float = Field(
        10.0, gt=0, le=600, description="How long to wait for the scheduler before failing."
    )

    @field_validator("memory_limit")
    @classmethod
    def _memory_size(cls, v: str) -> str:
        if v.strip().lower() == "auto":
            return "auto"
        from dask.utils import parse_bytes

        try:
            parse_bytes(v)
        except (ValueError, TypeError):
            raise ValueError("must be a size such as 4GiB, or auto") from None
        return v


class MonitorParams(_Section):
    """Production monitoring (`credit-scoring monitor`): thresholds that turn each number
    into a status (stable / watch / act) and the exit code a scheduler acts on."""

    psi_watch: float = Field(0.10, gt=0, description="PSI at or above this: watch.")
    psi_act: float = Field(0.25, gt=0, description="PSI above this: act.")
    psi_bins: int = Field(10, ge=2, le=50, description="Quantile bins frozen at training.")
    missing_watch: float = Field(
        0.05, gt=0, le=1, description="Change of a feature's missing rate (absolute): watch."
    )
    missing_act: float = Field(
        0.15, gt=0, le=1, description="Change of a feature's missing rate (absolute): act."
    )
    approval_watch: float = Field(
        0.05, gt=0, le=1, description="Change of the approval rate (absolute): watch."
    )
    approval_act: float = Field(
        0.10, gt=0, le=1, description="Change of the approval rate (absolute): act."
    )
    min_decisions: int = Field(
        200, ge=1, description="A window with fewer decisions is 'not checkable'."
    )
    window: Literal["day", "week", "month"] = Field(
        "month", description="How decisions are cut into monitoring windows."
    )
    reference_sample: int = Field(
        5000, ge=100, description="Training rows decided with reasons for the reference."
    )
    join_tolerance_days: int = Field(
        31,
        ge=0,
        description="An outcome joins the latest decision at most this many days before it.",
    )
    min_outcomes: int = Field(
        300, ge=1, description="Matured decisions a month needs for performance figures."
    )
    backtest_max_gap: float = Field(
        0.3,
        gt=0,
        lt=1,
        description="Backtest acts when the observed default rate's interval lies beyond "
        "mean PD x (1 +/- this).",
    )

    @model_validator(mode="after")
    def _ordered(self) -> MonitorParams:
        for low, high in (
            ("psi_watch", "psi_act"),
            ("missing_watch", "missing_act"),
            ("approval_watch", "approval_act"),
        ):
            if getattr(self, low) > getattr(self, high):
                raise ValueError(f"{low} must be <= {high}")
        return self


class Params(_Section):
    """The whole of params.yaml."""

    engine: Literal["local", "dask"] = Field(
        "local",
        description="Where the features and train stages run: 'local' (pandas in this "
        "process) or 'dask' (a Dask cluster, see the dask section). Same results either way.",
    )

    base: BaseParams = Field(default_factory=BaseParams)
    simulate: SimulateParams = Field(default_factory=SimulateParams)
    data: DataParams = Field(default_factory=DataParams)
    features: FeaturesParams = Field(default_factory=FeaturesParams)
    split: SplitParams = Field(default_factory=SplitParams)
    train: TrainParams = Field(default_factory=TrainParams)
    calibrate: CalibrateParams = Field(default_factory=CalibrateParams)
    score: ScoreParams = Field(default_factory=ScoreParams)
    decision: DecisionParams = Field(default_factory=DecisionParams)
    evaluate: EvaluateParams = Field(default_factory=EvaluateParams)
    fairness: FairnessParams = Field(default_factory=FairnessParams)
    robustness: RobustnessParams = Field(default_factory=RobustnessParams)
    gate: GateParams = Field(default_factory=GateParams)
    mlflow: MlflowParams = Field(default_factory=MlflowParams)
    serve: ServeParams = Field(default_factory=ServeParams)
    advice: AdviceParams = Field(default_factory=AdviceParams)
    monitor: MonitorParams = Field(default_factory=MonitorParams)

    dask: DaskParams = Field(default_factory=DaskParams)


def _fields_at(model: type[BaseModel] | None, loc: tuple) -> list[str]:
    """The keys a typed model accepts at ``loc`` (for "did you mean"); [] when unknown."""
    current: object = model
    for part in loc:
        if isinstance(part, int):
            continue  # a list element: same model as the list's items
        fields = getattr(current, "model_fields", None)
        if not fields or part not in fields:
            return []
        current = _model_of(fields[part].annotation)
    return list(getattr(current, "model_fields", {}) or {})


def _model_of(annotation: object) -> object:
    """The pydantic model inside an annotation such as ``X``, ``list[X]`` or ``X | None``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _model_of(arg)
        if found is not None:
            return found
    return None


def describe_validation_error(
    err: ValidationError,
    model: type[BaseModel] | None = None,
    lines: dict[tuple, int] | None = None,
) -> str:
    """Every problem of a pydantic validation in one line, each naming its key.

    Shared by params (here) and by the artefacts stages pass to each other
    (:mod:`credit_scoring.artefacts`), so both speak the same way. With ``model``, an
    unknown key gets the closest known keys ("did you mean"); with ``lines`` (key path
    -> line in the YAML file), each problem names its line.
    """
    parts = []
    for e in err.errors():
        loc = tuple(e["loc"])
        key = ".".join(str(p) for p in loc) or "<root>"
        where = _line_of(loc, lines)
        if e["type"] == "extra_forbidden":
            known = _fields_at(model, loc[:-1])
            close = difflib.get_close_matches(str(loc[-1]), known, n=2, cutoff=0.6)
            hint = f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""
            parts.append(f"{where}{key}: unknown key{hint}")
        elif e["type"] == "missing":
            parts.append(f"{where}missing key '{key}'")
        else:
            parts.append(f"{where}{key}: {e['msg']} (got {e.get('input')!r})")
    return "; ".join(parts)


def _line_of(loc: tuple, lines: dict[tuple, int] | None) -> str:
    """``line N: `` of the deepest key of ``loc`` that the file has, or ''."""
    if not lines:
        return ""
    for end in range(len(loc), 0, -1):
        if loc[:end] in lines:
            return f"line {lines[loc[:end]]}: "
    return ""


def _key_lines(text: str) -> dict[tuple, int]:
    """Key path -> 1-based line of every mapping key in a YAML document (best effort)."""
    try:
        root = yaml.compose(text)
    except yaml.YAMLError:
        return {}
    found: dict[tuple, int] = {}

    def walk(node: yaml.Node, path: tuple) -> None:
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                key = (*path, k.value)
                found[key] = k.start_mark.line + 1
                walk(v, key)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                found[(*path, i)] = item.start_mark.line + 1
                walk(item, (*path, i))

    if root is not None:
        walk(root, ())
    return found


def parse_params(
    raw: dict | None, source: str = "params", lines: dict[tuple, int] | None = None
) -> Params:
    """Validate a params mapping; errors name the offending key (and line) in one line."""
    try:
        return Params.model_validate(raw or {})
    except ValidationError as err:
        raise ConfigError(f"{source}: {describe_validation_error(err, Params, lines)}") from None


def load_params(path: str | Path = DEFAULT_PARAMS_PATH) -> Params:
    """Read and validate params.yaml once, at the edge of a stage."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: params file not found")
    text = path.read_text(encoding="utf-8")
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
        at = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
        what = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ConfigError(f"{at}: not valid YAML: {what}") from None
    if raw is not None and not isinstance(raw, dict):
        raise ConfigError(f"{path}: top level must be a mapping of sections")
    return parse_params(raw, str(path), _key_lines(text))
