"""The `credit-scoring` command: one subcommand per pipeline stage, I/O only.

Each command reads params.yaml once (validated by ``config``), calls pure library
functions and writes its outputs atomically. dvc.yaml calls these commands.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table as RichTable

from credit_scoring import __version__
from credit_scoring.config import ConfigError, Params, load_params
from credit_scoring.telemetry import disable_telemetry

if TYPE_CHECKING:
    from rich.console import Group

    from credit_scoring.decision.advice import Advice

app = typer.Typer(
    name="credit-scoring",
    help="Behaviour data -> point-in-time features -> calibrated 350-950 credit score, "
    "limit, tiers and reasons. Each command is one stage of `dvc repro` (see dvc.yaml).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True)

ParamsOption = Annotated[
    Path,
    typer.Option("--params", "-p", help="Pipeline parameters (validated at load).", exists=False),
]


DEPLOY_DIR = Path("models/bundle")


class StageError(Exception):
    """An expected failure a user can fix: reported in one line, no traceback."""


def _version(value: bool) -> None:
    if value:
        typer.echo(f"credit-scoring {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show version and exit."),
    ] = False,
) -> None:
    """Telemetry of MLflow, BentoML and DVC is off for every command."""
    disable_telemetry()


def _load(params_path: Path) -> Params:
    try:
        return load_params(params_path)
    except ConfigError as err:
        _fail(str(err))
        raise  # unreachable, for type checkers


def _fail(message: str) -> None:
    console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code=2)


@contextlib.contextmanager
def _stage(name: str) -> Iterator[None]:
    """Time a stage and turn expected input errors into one clear line and exit code 2."""
    from credit_scoring.data.ingest import InputError

    start = time.perf_counter()
    try:
        yield
    except (InputError, ConfigError, StageError, FileNotFoundError) as err:
        _fail(f"{name}: {err}")
    console.print(f"[green]{name}[/] done in {time.perf_counter() - start:.1f}s")


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
        disable=not sys.stderr.isatty(),
    )


def _summary_table(title: str, rows: dict[str, object]) -> RichTable:
    table = RichTable(title=title, show_header=False)
    for key, value in rows.items():
        table.add_row(str(key), f"{value:,}" if isinstance(value, int) else str(value))
    return table


@app.command()
def simulate(params: ParamsOption = Path("params.yaml")) -> None:
    """Generate the seeded synthetic behaviour world into data/simulated (+ data/truth.parquet).

    Size, default rate, cohorts and drift come from the `simulate` section of params.yaml.
    The true default probabilities go to a separate file used only for evaluation.
    """
    from credit_scoring.data import simulate as sim_mod

    p = _load(params)
    with _stage("simulate"), _progress() as bar:
        task = bar.add_task("simulating people", total=p.simulate.n_users)
        summary = sim_mod.write_world(
            p.simulate,
            p.base,
            out_dir=Path("data/simulated"),
            truth_path=Path("data/truth.parquet"),
            progress=lambda done: bar.update(task, completed=done),
        )
    console.print(_summary_table("simulated world", summary))


@app.command()
def ingest(
    params: ParamsOption = Path("params.yaml"),
    input_dir: Annotated[
        Path | None,
        typer.Option(help="Override data.input_dir: a folder of CSV/Parquet input files."),
    ] = None,
) -> None:
    """Validate the input tables: accepted rows, rejects with reasons, a data-quality report.

    Missing files or columns and empty tables stop the stage with one line naming the file
    and column. Bad rows go to data/rejects with the reason; input = accepted + rejected.
    """
    from credit_scoring.data import ingest as ingest_mod

    p = _load(params)
    folder = input_dir or Path(p.data.input_dir)
    with _stage("ingest"):
        result = ingest_mod.ingest(folder)
        ingest_mod.write_ingest_result(
            result,
            validated_dir=Path(p.data.validated_dir),
            rejects_dir=Path(p.data.rejects_dir),
            report_path=Path(p.data.quality_report),
        )
    rows = {}
    for name, rep in result.report.get("tables", {}).items():
        rows[name] = (
            f"{rep['input_rows']:,} in = {rep['accepted']:,} accepted"
            f" + {rep['rejected']:,} rejected"
        )
    console.print(_summary_table(f"ingest of {folder}", rows))


@app.command()
def features(params: ParamsOption = Path("params.yaml")) -> None:
    """Compute point-in-time features per person and observation date (events strictly before it).

    Writes data/features/features.parquet (label + features) and protected.parquet
    (gender, age band: for fairness measurement only, never model inputs). Events are
    streamed from Parquet, `features.chunk_people` people at a time, so memory stays
    bounded at millions of people.
    """
    from credit_scoring.features import registry as feat_mod
    from credit_scoring.features import streaming

    p = _load(params)
    if p.engine == "dask":
        _features_on_dask(p)
        return
    with _stage("features"), _progress() as bar:
        task = bar.add_task("computing features", total=None)
        summary = streaming.write_features(
            Path(p.data.validated_dir),
            Path(p.features.output_dir),
            p.features.windows,
            chunk_people=p.features.chunk_people,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    console.print(
        _summary_table(
            "features",
            {
                "rows": summary["rows"],
                "features": len(feat_mod.feature_names(p.features.windows)),
                "observation dates": summary["observation_dates"],
                "chunks": summary["chunks"] or "1 (loaded whole)",
            },
        )
    )


def _features_on_dask(p: Params) -> None:
    """The features stage on Dask (``engine: dask``): same outputs as the local engine."""
    from credit_scoring import cluster
    from credit_scoring.features import dask_engine
    from credit_scoring.features.registry import feature_names
    from credit_scoring.io import write_parquet

    out = Path(p.features.output_dir)
    with _stage("features (dask)"), _progress() as bar:
        with cluster.dask_client(p.dask) as client:
            task = bar.add_task("computing features on Dask (partitions)", total=None)
            table, protected = dask_engine.compute_features_dask(
                client,
                p.data.validated_dir,
                p.features.windows,
                p.dask.people_per_partition,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
        write_parquet(table, out / "features.parquet")
        write_parquet(protected, out / "protected.parquet")
    console.print(
        _summary_table(
            "features (dask)",
            {
                "rows": len(table),
                "features": len(feature_names(p.features.windows)),
                "observation dates": table["observation_date"].nunique(),
            },
        )
    )


@app.command()
def train(params: ParamsOption = Path("params.yaml")) -> None:
    """Train LightGBM out of time with monotone constraints, calibrate it, fit the WoE baseline.

    Split by observation date (oldest train, then validation for early stopping, then
    calibration, newest test). Writes models/bundle (booster + calibrator), per-slice
    predictions, the learning curve and the baseline scorecard table.
    """
    import numpy as np
    import pandas as pd

    from credit_scoring.decision.bundle import CreditModel
    from credit_scoring.features import registry as feat_mod
    from credit_scoring.io import write_json, write_parquet
    from credit_scoring.modelling.baseline import WoEScorecard
    from credit_scoring.modelling.split import out_of_time_split
    from credit_scoring.modelling.train import (
        feature_matrix,
        labels,
    )

    p = _load(params)
    out = Path(p.train.output_dir)
    with _stage("train"):
        table = pd.read_parquet(Path(p.features.output_dir) / "features.parquet")
        names = feat_mod.feature_names(p.features.windows)
        try:
            split = out_of_time_split(table, p.split)
        except ValueError as err:
            raise StageError(str(err)) from None
        if p.engine == "dask" and p.train.tune.enabled:
            raise StageError("train.tune.enabled is not supported with engine: dask")
        model = CreditModel(
            names,
            score_params=p.score,
            decision_params=p.decision,
            train_params=p.train,
            calibrate_params=p.calibrate,
            seed=p.base.seed,
        )
        if p.engine == "dask":
            from credit_scoring import cluster
            from credit_scoring.modelling.dask_train import dask_trainer

            with cluster.dask_client(p.dask) as client:
                # workers read the feature file too
                model.fit(split, dask_trainer(client, f"{p.features.output_dir}/features.parquet"))
        else:
            model.fit(split)
        model.save(out / "bundle")
        calibrator = model.calibrator
        y_tr = labels(split.train)
        baseline = WoEScorecard(
            max_bins=p.train.baseline_max_bins, C=p.train.baseline_C, random_state=p.base.seed
        ).fit(split.train[names], y_tr)
        preds = []
        for slice_name in ("train", "validation", "calibration", "test"):
            df = getattr(split, slice_name)
            x, y = feature_matrix(df, names), labels(df).astype(np.int8)
            margin = model.margin(x)
            preds.append(
                pd.DataFrame(
                    {
                        "slice": slice_name,
                        "person_id": df["person_id"].to_numpy(),
                        "observation_date": df["observation_date"].to_numpy(),
                        "default_12m": y,
                        "margin": margin,
                        "pd_uncalibrated": 1.0 / (1.0 + np.exp(-margin)),
                        "pd": calibrator.predict(margin),
                        "pd_baseline": baseline.predict_proba(df[names])[:, 1],
                    }
                )
            )
        write_parquet(pd.concat(preds, ignore_index=True), out / "predictions.parquet")
        write_json(
            {
                **model.training,
                "engine": p.engine,
                "slices": {
                    k: len(getattr(split, k))
                    for k in ("train", "validation", "calibration", "test")
                },
                "cohorts": {k: [str(d) for d in v] for k, v in split.cohorts.items()},
            },
            out / "train_log.json",
        )
        write_parquet(baseline.bin_table(), out / "baseline_scorecard.parquet")
    console.print(
        _summary_table(
            "train",
            {
                "train / valid / calib / test rows": " / ".join(
                    f"{len(getattr(split, k)):,}"
                    for k in ("train", "validation", "calibration", "test")
                ),
                "best iteration": model.best_iteration,
                "calibration": calibrator.method,
            },
        )
    )


@app.command()
def evaluate(params: ParamsOption = Path("params.yaml")) -> None:
    """Evaluate on the out-of-time test cohort: reports/metrics.json and plots.

    The calibrated model and the WoE baseline side by side (AUC, Gini, KS, Brier, ECE,
    log loss, PSI of the score train vs test), ECE before/after calibration and, on the
    synthetic world, the oracle AUC and the gap to the simulator's true probabilities.
    """
    import numpy as np
    import pandas as pd

    from credit_scoring.audit import evaluate as ev
    from credit_scoring.audit import fairness as fairness_mod
    from credit_scoring.decision.bundle import CreditModel
    from credit_scoring.decision.scorecard import ScoreScale
    from credit_scoring.features import registry as feat_mod
    from credit_scoring.io import write_atomic, write_json
    from credit_scoring.modelling.metrics import auc, brier, ece, psi

    p = _load(params)
    models = Path(p.train.output_dir)
    reports = Path("reports")
    plots = reports / "plots"
    with _stage("evaluate"):
        preds = pd.read_parquet(models / "predictions.parquet")
        model = CreditModel.load(models / "bundle")
        scale = ScoreScale.from_params(p.score)
        n_bins = p.calibrate.ece_bins
        test = preds[preds["slice"] == "test"]
        train = preds[preds["slice"] == "train"]
        y = test["default_12m"].to_numpy()
        score_train = scale.score(train["pd"].to_numpy())
        score_test = scale.score(test["pd"].to_numpy())
        metrics = {
            k: float(v)
            for k, v in ev.metrics_block(
                y, test["pd"].to_numpy(), train["pd"].to_numpy(), n_bins
            ).items()
        }
        metrics["psi"] = float(psi(score_train, score_test))
        metrics["baseline"] = ev.metrics_block(
            y, test["pd_baseline"].to_numpy(), train["pd_baseline"].to_numpy(), n_bins
        )
        metrics["uncalibrated"] = {
            "brier": brier(y, test["pd_uncalibrated"]),
            "ece": ece(y, test["pd_uncalibrated"], n_bins),
        }
        metrics["n_test"] = len(test)
        metrics["test_default_rate"] = float(y.mean())
        metrics["mean_pd"] = float(test["pd"].mean())
        metrics["calibration_method"] = model.calibrator.method
        metrics["best_iteration"] = model.best_iteration
        curves = {
            "model": (y, test["pd"].to_numpy()),
            "baseline": (y, test["pd_baseline"].to_numpy()),
        }
        true_pd = None
        truth_path = Path("data/truth.parquet")
        if truth_path.is_file() and Path(p.data.input_dir) == Path("data/simulated"):
            truth = pd.read_parquet(truth_path)
            joined = test.merge(truth, on=["person_id", "observation_date"], how="left")
            if joined["true_pd"].notna().all():
                tp = true_pd = joined["true_pd"].to_numpy()
                metrics["oracle_auc"] = auc(y, tp)
                metrics["true_pd_gap"] = {
                    "mean_abs_error": float(np.mean(np.abs(joined["pd"] - tp))),
                    "ece_vs_true_pd": ev.gap_to_truth(joined["pd"].to_numpy(), tp, n_bins),
                    "brier_oracle": brier(y, tp),
                }
                curves["oracle"] = (y, tp)
        roc = ev.roc_table(curves)
        cal_tables = {
            "model": ev.calibration_table(y, test["pd"].to_numpy(), n_bins),
            "uncalibrated": ev.calibration_table(y, test["pd_uncalibrated"].to_numpy(), n_bins),
            "baseline": ev.calibration_table(y, test["pd_baseline"].to_numpy(), n_bins),
        }
        gains = ev.gains_table(y, test["pd"].to_numpy())
        feats = pd.read_parquet(Path(p.features.output_dir) / "features.parquet")
        feats_test = test[["person_id", "observation_date"]].merge(
            feats, on=["person_id", "observation_date"], how="left"
        )
        decisions = model.decide(feats_test, with_reasons=False)
        bands = ev.band_table(
            decisions["score"].to_numpy(),
            y,
            decisions["pd"].to_numpy(),
            p.score.bands,
            limit=decisions["credit_limit"].to_numpy(),
        )
        monotone, why = ev.bands_monotone(bands, p.evaluate.min_band_people)
        metrics["band_default_rate_monotone"] = monotone
        metrics["approval_rate"] = float((decisions["credit_limit"] > 0).mean())
        metrics["mean_limit_approved"] = float(
            decisions.loc[decisions["credit_limit"] > 0, "credit_limit"].mean()
        )
        fair = _fairness_report(p, test, decisions, true_pd)
        metrics["fairness"] = fairness_mod.summary_metrics(fair)
        write_json(fair, reports / "fairness.json")
        dims = {n: feat_mod.feature_spec(n).dimension.value for n in model.feature_names}
        imp = ev.importance_table(model.booster, model.feature_names, dims)
        train_log = json.loads((models / "train_log.json").read_text())
        write_json(metrics, reports / "metrics.json")
        for name, df in {
            "roc": roc,
            "calibration": pd.concat([t.assign(model=k) for k, t in cal_tables.items()]),
            "gains": gains,
            "importance": imp,
            "band_table": bands,
            "score_distribution": pd.DataFrame(
                {
                    "score": np.r_[score_train, score_test],
                    "slice": ["train"] * len(score_train) + ["test"] * len(score_test),
                }
            )
            .groupby(["slice", "score"])
            .size()
            .rename("people")
            .reset_index(),
        }.items():
            write_atomic(plots / f"{name}.csv", lambda tmp, df=df: df.to_csv(tmp, index=False))
        figures = {
            "roc.png": ev.plot_roc(roc, {k: auc(*v) for k, v in curves.items()}),
            "calibration.png": ev.plot_calibration(cal_tables),
            "gains_ks.png": ev.plot_gains(gains),
            "score_distribution.png": ev.plot_score_distribution(
                {"train": score_train, "test": score_test}, p.score.bands
            ),
            "feature_importance.png": ev.plot_importance(imp),
            "band_table.png": ev.plot_band_table(bands),
            "limit_distribution.png": ev.plot_limit_distribution(
                decisions["credit_limit"].to_numpy(), decisions["band"].to_numpy()
            ),
            "learning_curve.png": ev.plot_learning_curve(
                train_log["evals_result"], train_log["best_iteration"]
            ),
            "fairness.png": fairness_mod.plot_fairness(fair),
        }
        for fname, fig in figures.items():
            write_atomic(
                plots / fname, lambda tmp, fig=fig: fig.savefig(tmp, format="png", dpi=110)
            )
    _print_fairness(fair, p.fairness.block_promotion)
    if not monotone and p.evaluate.fail_on_non_monotone_bands:
        _fail(f"evaluate: default rate does not fall as the band rises: {why}")
    shown = {k: f"{metrics[k]:.4f}" for k in ("auc", "gini", "ks", "brier", "ece", "psi")}
    shown["baseline auc"] = f"{metrics['baseline']['auc']:.4f}"
    if "oracle_auc" in metrics:
        shown["oracle auc"] = f"{metrics['oracle_auc']:.4f}"
    console.print(_summary_table("test cohort", shown))


def _fairness_report(p: Params, test, decisions, true_pd=None) -> dict:
    """Join the test cohort's decisions to its protected attributes and build the report.

    With the simulator's true PD (synthetic world only), the oracle's approvals are those
    whose true-PD score clears the cut-off (the limit is 0 exactly below it).
    """
    import pandas as pd

    from credit_scoring.audit.fairness import fairness_report
    from credit_scoring.decision.scorecard import ScoreScale

    oracle = None
    if true_pd is not None:
        oracle = ScoreScale.from_params(p.score).score(true_pd) >= p.decision.limit.cutoff_score

    path = Path(p.features.output_dir) / "protected.parquet"
    protected = pd.read_parquet(path)
    keys = ["person_id", "observation_date"]
    aligned = test[keys].merge(protected, on=keys, how="left", validate="many_to_one")
    try:
        return fairness_report(
            decisions.reset_index(drop=True),
            test["default_12m"].to_numpy(),
            aligned,
            p.fairness,
            sorted(p.score.bands, key=p.score.bands.get),
            p.calibrate.ece_bins,
            true_pd=true_pd,
            oracle_approved=oracle,
        )
    except ValueError as err:
        raise StageError(f"fairness report ({path}): {err}") from None


def _print_fairness(report: dict, blocking: bool) -> None:
    """Loud when a fairness bound is crossed: every breach in red, and whether it blocks."""
    if not report["breaches"]:
        console.print(f"[green]fairness[/]: {report['verdict']} (reports/fairness.json)")
        return
    effect = (
        "promotion WILL BE REFUSED (fairness.block_promotion: true)"
        if blocking
        else "promotion not blocked (fairness.block_promotion: false)"
    )
    console.print(
        f"[bold red]FAIRNESS BREACH[/] ({len(report['breaches'])}), {effect}:", highlight=False
    )
    for line in report["breaches"]:
        console.print(f"[red]  - {line}[/]", highlight=False, soft_wrap=True)


@app.command()
def score(
    params: ParamsOption = Path("params.yaml"),
    input_path: Annotated[
        Path | None,
        typer.Option(
            "--input",
            help="A features Parquet/CSV (default: data/features/features.parquet) or a "
            "folder of raw input files (docs/input-format.md), scored through the feature code.",
        ),
    ] = None,
    output_dir: Annotated[Path, typer.Option(help="Where decisions and rejects go.")] = Path(
        "data/scores"
    ),
    model_dir: Annotated[Path, typer.Option(help="The deployable model bundle.")] = DEPLOY_DIR,
    reasons: Annotated[bool, typer.Option(help="Add reasons and dimension points.")] = True,
) -> None:
    """Score a whole table into decisions (PD, score, band, limit, tiers, reasons, points).

    Writes decisions.parquet and rejects.parquet (rows that cannot be scored, with the
    reason); input rows = scored + rejected.
    """
    import pandas as pd

    from credit_scoring.data import ingest as ingest_mod
    from credit_scoring.decision.batch import score_features
    from credit_scoring.decision.bundle import CreditModel, decisions_frame
    from credit_scoring.features.compute import compute_features
    from credit_scoring.io import write_parquet

    p = _load(params)
    source = input_path or Path(p.features.output_dir) / "features.parquet"
    with _stage("score"):
        model = CreditModel.load(model_dir)
        if source.is_dir():
            result = ingest_mod.ingest(source)
            table = compute_features(result.data, p.features.windows)
            upstream = result.rejects.get("outcomes")
            n_input = len(table) + (0 if upstream is None else len(upstream))
        elif source.is_file():
            table = pd.read_csv(source) if source.suffix == ".csv" else pd.read_parquet(source)
            upstream, n_input = None, len(table)
        else:
            raise StageError(f"{source}: no such file or folder")
        decisions, rejects = score_features(model, table, with_reasons=reasons)
        if upstream is not None and len(upstream):
            rejects = pd.concat(
                [rejects, upstream.rename(columns={"reject_reason": "reason"})], ignore_index=True
            )
        write_parquet(decisions_frame(decisions), output_dir / "decisions.parquet")
        write_parquet(rejects.astype(str), output_dir / "rejects.parquet")
    console.print(
        _summary_table(
            f"scored {source}",
            {
                "input rows": n_input,
                "scored": len(decisions),
                "rejected": len(rejects),
                "approved (limit > 0)": int((decisions["credit_limit"] > 0).sum()),
            },
        )
    )


@app.command()
def advice(
    person_id: Annotated[str, typer.Option("--person-id", help="The person to advise.")],
    observation_date: Annotated[
        str | None,
        typer.Option(help="YYYY-MM-DD of the feature row (default: the person's latest)."),
    ] = None,
    params: ParamsOption = Path("params.yaml"),
    model_dir: Annotated[Path, typer.Option(help="The deployable model bundle.")] = DEPLOY_DIR,
    as_json: Annotated[bool, typer.Option("--json", help="Print the advice as JSON.")] = False,
) -> None:
    """How one person can raise their score: the changes within their power that gain most.

    Reads the person's feature row from features.parquet, applies every action of the
    catalogue (only features the person can change, moved together consistently over
    time), scores each with the deployed model and shows the best `advice.max_actions`
    with their new score, band, credit limit and tiers.
    """
    import pandas as pd

    from credit_scoring.decision import advice as advice_mod
    from credit_scoring.decision.bundle import CreditModel

    p = _load(params)
    source = Path(p.features.output_dir) / "features.parquet"
    try:
        if not source.is_file():
            raise StageError(f"{source}: no such file (run `dvc repro` first)")
        if not (model_dir / "bundle.json").is_file():
            raise StageError(f"{model_dir}: no model bundle (run `dvc repro` first)")
        rows = pd.read_parquet(source, filters=[("person_id", "==", person_id)])
        if rows.empty:
            raise StageError(f"{source}: no person {person_id!r}")
        dates = sorted(rows["observation_date"].unique())
        if observation_date is None:
            when = dates[-1]
        else:
            try:
                when = pd.Timestamp(observation_date)
            except ValueError:
                raise StageError(
                    f"--observation-date: {observation_date!r} is not a date (YYYY-MM-DD)"
                ) from None
            if when not in set(dates):
                shown = ", ".join(f"{pd.Timestamp(d):%Y-%m-%d}" for d in dates)
                raise StageError(
                    f"{source}: person {person_id!r} has no row at {when:%Y-%m-%d} (dates: {shown})"
                )
        row = rows[rows["observation_date"] == when].head(1)
        model = CreditModel.load(model_dir)
        result = advice_mod.advise(model, row, p.advice)[0]
    except (StageError, ValueError, OSError) as err:
        _fail(f"advice: {err}")
        raise  # unreachable
    when_text = f"{pd.Timestamp(when):%Y-%m-%d}"
    if as_json:
        body = {"person_id": person_id, "observation_date": when_text, **result.to_dict()}
        typer.echo(json.dumps(body, indent=2))
        return
    Console().print(_advice_view(result, f"{person_id} at {when_text}"))


def _advice_view(result: Advice, who: str) -> Group:
    """Today's decision, a table of the advised actions, what each changes, and all together."""
    from rich.console import Group
    from rich.text import Text

    now = result.current
    head = Text(
        f"{who}: score {now['score']} ({now['band']}), credit limit "
        f"CNY {now['credit_limit']:,.0f}, tiers: {', '.join(now['tiers']) or 'none'}"
    )
    if not result.items:
        return Group(head, Text("No change within this person's power raises the score."))
    table = RichTable(title="How to raise the score")
    for col in ("#", "Action", "Gain", "New score", "Reaches"):
        table.add_column(col, justify="right" if col in ("#", "Gain", "New score") else "left")
    for i, item in enumerate(result.items, 1):
        out = item.outcome
        reaches = [out.band] if out.band is not None else []
        if out.credit_limit is not None:
            reaches.append(f"limit CNY {out.credit_limit:,.0f}")
        reaches += out.new_tiers
        table.add_row(str(i), item.text, f"+{out.gain}", str(out.score), "\n".join(reaches) or "-")
    lines = [head, table]
    for i, item in enumerate(result.items, 1):
        lines.append(Text(f"{i}. {item.sentence}"))
        lines += [Text(f"   - {c.text}") for c in item.changes]
    if result.combined_sentence is not None:
        lines.append(Text(result.combined_sentence))
    return Group(*lines)


def _dvc_lock_hashes(lock_path: Path = Path("dvc.lock")) -> dict[str, str]:
    """md5 of every stage output recorded by DVC, to tie a run to its exact data."""
    import yaml

    if not lock_path.is_file():
        return {}
    lock = yaml.safe_load(lock_path.read_text()) or {}
    out = {}
    for stage, body in (lock.get("stages") or {}).items():
        for o in body.get("outs", []) or []:
            if "md5" in o:
                out[f"dvc.{stage}.{o['path']}"] = o["md5"]
    return out


@app.command()
def robustness(params: ParamsOption = Path("params.yaml")) -> None:
    """Audit manipulation resistance and score stability on real test-cohort people.

    Adds cheap activity (tiny top-ups, a purchase burst, profile edits, top-scored
    contacts, all of them) to a sample of the test cohort in the days before their
    observation date, re-scores them with the deployed model and bounds the gain; and
    compares each person's score with their score a month earlier. Writes
    reports/robustness.json and plots under reports/robustness/; fails (exit 2) when
    a bound in the `robustness` section of params.yaml is broken.
    """
    import pandas as pd

    from credit_scoring.audit import robustness as rb
    from credit_scoring.data.validated import read_validated
    from credit_scoring.decision.bundle import CreditModel
    from credit_scoring.features.compute import person_data
    from credit_scoring.io import write_atomic, write_json
    from credit_scoring.modelling.split import out_of_time_split

    p = _load(params)
    r = p.robustness
    out = Path("reports") / "robustness"
    with _stage("robustness"), _progress() as bar:
        task = bar.add_task("gaming scenarios + stability", total=len(rb.SCENARIOS) + 2)
        model = CreditModel.load(DEPLOY_DIR)
        table = pd.read_parquet(Path(p.features.output_dir) / "features.parquet")
        test = out_of_time_split(table, p.split).test
        scored = test[["person_id", "observation_date"]].assign(
            score=model.decide(test, with_reasons=False)["score"].to_numpy()
        )
        targets, pool = rb.choose_people(scored, r.sample_people, r.good_contacts, p.base.seed)
        data = read_validated(Path(p.data.validated_dir))
        sliced = person_data(data, list(targets["person_id"]) + list(pool))
        del data
        bar.advance(task)
        ctx = rb.GamingContext(r.window_days, pool, r.good_contacts)
        gains = rb.gaming_gains(
            model,
            sliced,
            targets,
            ctx,
            p.base.seed,
            p.features.windows,
            progress=lambda _: bar.advance(task),
        )
        summary = rb.gains_summary(gains, r.max_gain_points, r.gain_quantile)
        changes = rb.score_changes(model, sliced, targets, r.stability.lag_days, p.features.windows)
        stability = rb.stability_summary(changes)
        bar.advance(task)
        breaches = []
        for check in (
            lambda: rb.check_gains(summary, r.max_gain_points),
            lambda: rb.check_stability(stability, r.stability.max_p90_change_points),
        ):
            try:
                check()
            except rb.RobustnessError as err:
                breaches.append(str(err))
        report = {
            "sample_people": len(targets),
            "good_contact_pool": len(pool),
            "bounds": {
                "max_gain_points": r.max_gain_points,
                "gain_quantile": r.gain_quantile,
                "max_p90_change_points": r.stability.max_p90_change_points,
            },
            "gaming": summary,
            "stability": {"lag_days": r.stability.lag_days, **stability},
            "summary": {
                "max_bounded_gain": max(s["bounded_gain"] for s in summary.values()),
                "worst_scenario": max(summary, key=lambda k: summary[k]["bounded_gain"]),
                "stable_p90_change": stability["stable"]["p90"],
                "passed": not breaches,
            },
            "breaches": breaches,
        }
        write_json(report, Path("reports") / "robustness.json")
        write_atomic(out / "gains.csv", lambda tmp: gains.to_csv(tmp, index=False))
        write_atomic(out / "stability.csv", lambda tmp: changes.to_csv(tmp, index=False))
        figures = {
            "gaming_gains.png": rb.plot_gains(gains, r.max_gain_points),
            "stability.png": rb.plot_stability(
                changes, r.stability.lag_days, r.stability.max_p90_change_points
            ),
        }
        for fname, fig in figures.items():
            write_atomic(out / fname, lambda tmp, fig=fig: fig.savefig(tmp, format="png", dpi=110))
    shown = {
        name: f"p{100 * s['bounded_quantile']:g} {s['bounded_gain']:+.0f}  "
        f"mean {s['mean']:+.1f}  max {s['max']:+.0f}"
        for name, s in summary.items()
    }
    st = stability["stable"]
    shown["stability (stable people)"] = (
        f"p50 {st['p50']:.0f}  p90 {st['p90']:.0f}  p99 {st['p99']:.0f}  n={st['n']}"
    )
    console.print(_summary_table("score gain bought by cheap activity", shown))
    if breaches and r.fail_on_breach:
        _fail("robustness: " + " | ".join(breaches))


@app.command()
def register(params: ParamsOption = Path("params.yaml")) -> None:
    """Log the run to MLflow, register the model as `challenger`, and run the promotion gate.

    One run per training: params, metrics, the learning curve, plots and reports, the
    model with signature and input example, tags tying it to git and DVC data hashes.
    The gate moves the `champion` alias only when the challenger is calibrated (ECE),
    stable (PSI) and beats the champion re-scored on the same test cohort.
    """
    import mlflow
    import pandas as pd
    from mlflow.models import infer_signature

    from credit_scoring.audit.gate import decide_promotion
    from credit_scoring.decision.bundle import CreditModel, decisions_frame
    from credit_scoring.io import write_json
    from credit_scoring.tracking import registry as tracking

    p = _load(params)
    models = Path(p.train.output_dir)
    reports = Path("reports")
    with _stage("register"):
        metrics = json.loads((reports / "metrics.json").read_text())
        fairness_path = reports / "fairness.json"
        fairness_breaches = (
            json.loads(fairness_path.read_text())["breaches"] if fairness_path.is_file() else None
        )
        train_log = json.loads((models / "train_log.json").read_text())
        model = CreditModel.load(DEPLOY_DIR)
        table = pd.read_parquet(Path(p.features.output_dir) / "features.parquet")
        test_dates = pd.to_datetime(train_log["cohorts"]["test"])
        test = table[table["observation_date"].isin(test_dates) & table["default_12m"].notna()]
        y = test["default_12m"].to_numpy(dtype=int)
        client = tracking.configure(p.mlflow)
        name = p.mlflow.model_name
        with mlflow.start_run(run_name=f"lightgbm-{tracking.git_commit()[:8]}") as run:
            mlflow.log_params(tracking.flatten(p.model_dump(mode="json")))
            flat = {
                k.replace(".", "_"): float(v)
                for k, v in tracking.flatten(metrics).items()
                if isinstance(v, int | float) and not isinstance(v, bool)
            }
            mlflow.log_metrics({f"test_{k}": v for k, v in flat.items()})
            from mlflow.entities import Metric

            now = int(pd.Timestamp.now().timestamp() * 1000)
            curve = [
                Metric(f"learning_curve_{split}_{metric}", float(v), now, step)
                for split, curves in train_log["evals_result"].items()
                for metric, values in curves.items()
                for step, v in enumerate(values)
            ]
            for i in range(0, len(curve), 900):
                client.log_batch(run.info.run_id, metrics=curve[i : i + 900])
            mlflow.log_artifacts(str(reports), artifact_path="reports")
            mlflow.log_dict(train_log, "train_log.json")
            features_file = Path(p.features.output_dir) / "features.parquet"
            mlflow.set_tags(
                {
                    "git_commit": tracking.git_commit(),
                    "features_md5": tracking.file_md5(features_file),
                    "data_input_dir": p.data.input_dir,
                    "calibration_method": model.calibrator.method,
                    **_dvc_lock_hashes(),
                }
            )
            example = test[model.feature_names].head(5)
            signature = infer_signature(example, decisions_frame(model.decide(example)))
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=str(tracking.MODEL_CODE),
                artifacts={"bundle": str(DEPLOY_DIR)},
                signature=signature,
                input_example=example,
                pip_requirements=tracking.pip_requirements(),
                registered_model_name=name,
            )
            version = str(info.registered_model_version)
            client.set_registered_model_alias(name, tracking.CHALLENGER, version)
            champ = tracking.champion_version(client, name)
            champ_metrics = None
            if champ is not None:
                champ_auc = tracking.score_champion_auc(name, test, y)
                if champ_auc is None:  # cannot re-score: fall back to its logged test AUC
                    champ_auc = client.get_run(champ.run_id).data.metrics.get("test_auc", 0.0)
                champ_metrics = {"auc": float(champ_auc), "version": float(champ.version)}
            decision = decide_promotion(
                {"auc": metrics["auc"], "ece": metrics["ece"], "psi": metrics["psi"]},
                champ_metrics,
                p.gate,
                fairness_breaches=fairness_breaches,
                block_on_fairness=p.fairness.block_promotion,
            )
            if decision.promote:
                client.set_registered_model_alias(name, tracking.CHAMPION, version)
            gate = {
                "model_name": name,
                "version": version,
                "run_id": run.info.run_id,
                **decision.to_dict(),
            }
            mlflow.log_dict(gate, "gate.json")
            mlflow.set_tags({"gate_promote": str(decision.promote), "model_version": version})
            client.set_model_version_tag(
                name, version, "gate", "promoted" if decision.promote else "refused"
            )
            client.set_model_version_tag(name, version, "test_auc", f"{metrics['auc']:.4f}")
        write_json(gate, reports / "gate.json")
    console.print(
        _summary_table(
            "registry",
            {
                "tracking uri": tracking.tracking_uri(p.mlflow),
                "model": f"{name} v{version}",
                "gate": "PROMOTED to champion" if decision.promote else "refused",
                **{f"reason {i + 1}": r for i, r in enumerate(decision.reasons)},
            },
        )
    )


@app.command()
def package(
    params: ParamsOption = Path("params.yaml"),
    build: Annotated[
        bool | None,
        typer.Option(help="Build the Bento after importing the model (default: serve.build)."),
    ] = None,
) -> None:
    """Put the registry's champion into the BentoML model store and build the Bento.

    Downloads the model behind the `serve.alias` alias (default `champion`) from the MLflow
    registry, imports its plain-file bundle into the BentoML model store (BENTOML_HOME or
    `serve.bentoml_home`) labelled with the registry version and test metrics, and builds
    the Bento from bentofile.yaml. Serve it with
    `bentoml serve credit_scoring.serving.service:CreditScoring`.
    """
    from credit_scoring.io import write_json
    from credit_scoring.tracking import bento

    p = _load(params)
    bento.use_bentoml_home(p.serve.bentoml_home)
    with _stage("package"):
        try:
            summary = bento.package_champion(
                p.mlflow,
                p.serve.alias,
                p.serve.max_batch,
                Path.cwd(),
                p.serve.build if build is None else build,
            )
        except bento.NoChampionError as err:
            raise StageError(str(err)) from None
        write_json(summary, Path("reports") / "package.json")
    console.print(_summary_table("package", summary))


if __name__ == "__main__":  # pragma: no cover
    app()
