"""The `credit-scoring` command: one subcommand per pipeline stage, options and printing only.

Each command reads params.yaml once (validated by ``config``), calls ``run`` of its own
stage module in :mod:`credit_scoring.stages` (imported inside the command, so a command
loads only its stage's code and dvc.yaml can list exactly what each stage runs), and
prints the summary. Expected errors become one line and exit code 2. dvc.yaml calls these
commands.
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
from credit_scoring.artefacts import ArtefactError
from credit_scoring.config import ConfigError, Params, load_params
from credit_scoring.stages import StageError
from credit_scoring.telemetry import disable_telemetry

if TYPE_CHECKING:
    from rich.console import Group

    from credit_scoring.decision.advice import Advice
    from credit_scoring.stages import Progress as ProgressCallback

app = typer.Typer(
    name="credit-scoring",
    help="Behaviour data -> point-in-time features -> calibrated 350-950 credit score, "
    "limit, tiers and reasons. Each command is one stage of `dvc repro` (see dvc.yaml).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True)
#: Where `score --input FILE` writes by default: never the score stage's DVC output.
ADHOC_SCORES_DIR = Path("scores")

ParamsOption = Annotated[
    Path,
    typer.Option("--params", "-p", help="Pipeline parameters (validated at load).", exists=False),
]
ModelDirOption = Annotated[
    Path | None,
    typer.Option(
        help="The deployable model bundle (default: models/bundle, under train.output_dir)."
    ),
]


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
    """Time a stage and turn expected errors into one clear line and exit code 2.

    Expected: bad params (including an unreachable cluster), a missing or malformed input
    or artefact (input tables are artefacts too), a stage's own refusal, a missing file.
    """
    start = time.perf_counter()
    try:
        yield
    except (ArtefactError, ConfigError, StageError, FileNotFoundError) as err:
        _fail(f"{name}: {err}")
    console.print(f"[green]{name}[/] done in {time.perf_counter() - start:.1f}s")


@contextlib.contextmanager
def _bar(description: str) -> Iterator[ProgressCallback]:
    """A progress bar on a terminal (nothing otherwise), fed by a stage's ``progress``."""
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
        disable=not sys.stderr.isatty(),
    ) as bar:
        task = bar.add_task(description, total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


def _summary_table(title: str, rows: dict[str, object]) -> RichTable:
    table = RichTable(title=title, show_header=False)
    for key, value in rows.items():
        table.add_row(str(key), f"{value:,}" if isinstance(value, int) else str(value))
    return table


@app.command()
def check(params: ParamsOption = Path("params.yaml")) -> None:
    """Validate params.yaml (every key, type and range): the first stage of `dvc repro`.

    Every other stage depends on its output, so a bad param stops `dvc repro` here with one
    line naming the key, before DVC deletes any stage's outputs.
    """
    from credit_scoring.stages import check as stage

    p = _load(params)
    with _stage("check"):
        summary = stage.run(p, params)
    console.print(f"{summary['params']}: valid", highlight=False)


@app.command()
def simulate(params: ParamsOption = Path("params.yaml")) -> None:
    """Generate the seeded synthetic behaviour world into data/simulated (+ data/truth.parquet).

    Size, default rate, cohorts and drift come from the `simulate` section of params.yaml.
    The true default probabilities go to a separate file used only for evaluation.
    """
    from credit_scoring.stages import simulate as stage

    p = _load(params)
    with _stage("simulate"), _bar("simulating people") as progress:
        summary = stage.run(p, progress=progress)
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
    from credit_scoring.stages import ingest as stage

    p = _load(params)
    with _stage("ingest"):
        summary = stage.run(p, input_dir=input_dir)
    rows = {
        name: f"{rep['input_rows']:,} in = {rep['accepted']:,} accepted"
        f" + {rep['rejected']:,} rejected"
        for name, rep in summary["tables"].items()
    }
    console.print(_summary_table(f"ingest of {summary['input_dir']}", rows))


@app.command()
def features(params: ParamsOption = Path("params.yaml")) -> None:
    """Compute point-in-time features per person and observation date (events strictly before it).

    Writes data/features/features.parquet (label + features) and protected.parquet
    (gender, age band: for fairness measurement only, never model inputs). Events are
    streamed from Parquet, `features.chunk_people` people at a time, so memory stays
    bounded at millions of people.
    """
    from credit_scoring.stages import features as stage

    p = _load(params)
    on_dask = p.engine == "dask"
    name = "features (dask)" if on_dask else "features"
    what = "computing features on Dask (partitions)" if on_dask else "computing features"
    with _stage(name), _bar(what) as progress:
        summary = stage.run(p, progress=progress)
    console.print(_summary_table(name, summary))


@app.command()
def train(params: ParamsOption = Path("params.yaml")) -> None:
    """Train LightGBM out of time with monotone constraints, calibrate it, fit the WoE baseline.

    Split by observation date (oldest train, then validation for early stopping, then
    calibration, newest test). Writes models/bundle (booster + calibrator), per-slice
    predictions, the learning curve and the baseline scorecard table.
    """
    from credit_scoring.stages import train as stage

    p = _load(params)
    with _stage("train"), _bar("boosting rounds") as progress:
        summary = stage.run(p, progress=progress)
    console.print(_summary_table("train", summary))


@app.command()
def evaluate(params: ParamsOption = Path("params.yaml")) -> None:
    """Evaluate on the out-of-time test cohort: reports/metrics.json and plots.

    The calibrated model and the WoE baseline side by side (AUC, Gini, KS, Brier, ECE,
    log loss, PSI of the score train vs test), ECE before/after calibration and, on the
    synthetic world, the oracle AUC and the gap to the simulator's true probabilities.
    """
    from credit_scoring.stages import evaluate as stage

    p = _load(params)
    with _stage("evaluate"):
        out = stage.run(p)
    _print_fairness(out["fairness"], p.fairness.block_promotion, out["fairness_path"])
    if not out["monotone"] and p.evaluate.fail_on_non_monotone_bands:
        _fail(f"evaluate: default rate does not fall as the band rises: {out['why']}")
    metrics = out["metrics"]
    shown = {k: f"{metrics[k]:.4f}" for k in ("auc", "gini", "ks", "brier", "ece", "psi")}
    shown["baseline auc"] = f"{metrics['baseline']['auc']:.4f}"
    if "oracle_auc" in metrics:
        shown["oracle auc"] = f"{metrics['oracle_auc']:.4f}"
    console.print(_summary_table("test cohort", shown))


def _print_fairness(report: dict, blocking: bool, path: Path) -> None:
    """Loud when a fairness bound is crossed: every breach in red, and whether it blocks."""
    if not report["breaches"]:
        console.print(f"[green]fairness[/]: {report['verdict']} ({path})")
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
    output_dir: Annotated[
        Path | None,
        typer.Option(
            help="Where decisions and rejects go (default: data/scores, the pipeline's own "
            "output, for the feature table; scores/<input name>/ for an --input, so scoring "
            "your file never overwrites what `dvc repro` wrote)."
        ),
    ] = None,
    model_dir: ModelDirOption = None,
    reasons: Annotated[bool, typer.Option(help="Add reasons and dimension points.")] = True,
) -> None:
    """Score a whole table into decisions (PD, score, band, limit, tiers, reasons, points).

    Writes decisions.parquet and rejects.parquet (rows that cannot be scored, with the
    reason); input rows = scored + rejected.
    """
    from credit_scoring.stages import score as stage

    p = _load(params)
    if input_path is not None and output_dir is None:
        output_dir = ADHOC_SCORES_DIR / (input_path.stem or "input")
    with _stage("score"), _bar("people decided") as progress:
        summary = stage.run(p, input_path, output_dir, model_dir, reasons, progress)
    if output_dir is not None:
        console.print(f"decisions in {output_dir}/", highlight=False)
    console.print(_summary_table(f"scored {summary.pop('source')}", summary))


@app.command()
def advice(
    person_id: Annotated[str, typer.Option("--person-id", help="The person to advise.")],
    observation_date: Annotated[
        str | None,
        typer.Option(help="YYYY-MM-DD of the feature row (default: the person's latest)."),
    ] = None,
    params: ParamsOption = Path("params.yaml"),
    model_dir: ModelDirOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the advice as JSON.")] = False,
) -> None:
    """How one person can raise their score: the changes within their power that gain most.

    Reads the person's feature row from features.parquet, applies every action of the
    catalogue (only features the person can change, moved together consistently over
    time), scores each with the deployed model and shows the best `advice.max_actions`
    with their new score, band, credit limit and tiers.
    """
    from credit_scoring.stages import advice as stage

    p = _load(params)
    try:
        out = stage.run(p, person_id, observation_date, model_dir)
    except (StageError, ValueError, OSError) as err:
        _fail(f"advice: {err}")
        raise  # unreachable
    result, when = out["advice"], out["observation_date"]
    if as_json:
        body = {"person_id": person_id, "observation_date": when, **result.to_dict()}
        typer.echo(json.dumps(body, indent=2))
        return
    Console().print(_advice_view(result, f"{person_id} at {when}"))


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
    from credit_scoring.stages import robustness as stage

    p = _load(params)
    with _stage("robustness"), _bar("gaming scenarios + stability") as progress:
        report = stage.run(p, progress=progress)
    if report.get("not_checkable"):
        console.print(f"robustness: {report['not_checkable']}")
        return
    shown = {
        name: f"{s['status']}  p{100 * s['bounded_quantile']:g} {s['bounded_gain']:+.0f}  "
        f"mean {s['mean']:+.1f}  max {s['max']:+.0f}  "
        f"limit p{100 * s['bounded_quantile']:g} {s['limit_gain']['bounded_gain']:+,.0f} "
        f"(beyond allowed {s['limit_gain'].get('bounded_excess', 0):+,.0f})  "
        f"n={s['n']}"
        for name, s in report["gaming"].items()
    }
    st = report["stability"]["stable"]
    shown["stability (stable people)"] = (
        f"p50 {st['p50']:.0f}  p90 {st['p90']:.0f}  p99 {st['p99']:.0f}  n={st['n']}"
    )
    console.print(_summary_table("score gain bought by cheap activity", shown))
    if report["breaches"] and p.robustness.fail_on_breach:
        _fail("robustness: " + " | ".join(report["breaches"]))


@app.command()
def register(params: ParamsOption = Path("params.yaml")) -> None:
    """Log the run to MLflow, register the model as `challenger`, and run the promotion gate.

    One run per training: params, metrics, the learning curve, plots and reports, the
    model with signature and input example, tags tying it to git and DVC data hashes.
    The gate moves the `champion` alias only when the challenger is calibrated (ECE),
    stable (PSI) and better than the champion re-scored on the same test cohort: the lower
    bound of the DeLong interval of the AUC gain must clear `gate.min_auc_gain`.
    """
    from credit_scoring.stages import register as stage

    p = _load(params)
    with _stage("register"):
        summary = stage.run(p)
    console.print(_summary_table("registry", summary))


@app.command()
def report(params: ParamsOption = Path("params.yaml")) -> None:
    """Write the model validation report of this run (reports/validation/index.html).

    Data and split, performance with confidence intervals, score to odds, calibration,
    PSI/CSI, characteristic analysis, fairness, gaming and stability, the gate and a model
    card, from the artefacts that exist (missing ones are "not available"); logged to the
    registered MLflow run under validation/.
    """
    from credit_scoring.stages import report as stage

    p = _load(params)
    with _stage("report"):
        summary = stage.run(p)
    console.print(_summary_table("validation report", summary))


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
    from credit_scoring.stages import package as stage

    p = _load(params)
    with _stage("package"):
        summary = stage.run(p, build)
    console.print(_summary_table("package", summary))


# --------------------------------------------------------------------------- service admin

KeysFileOption = Annotated[
    Path | None,
    typer.Option(help="Hashed keys file (default: serve.auth.keys_file)."),
]


@app.command("api-key")
def api_key(
    action: Annotated[str, typer.Argument(help="mint | revoke")],
    client_id: Annotated[
        str | None, typer.Option(help="mint: who the key is for (logged with decisions).")
    ] = None,
    key_id: Annotated[
        str | None, typer.Option(help="revoke: the key id (second part of the token).")
    ] = None,
    keys_file: KeysFileOption = None,
    params: ParamsOption = Path("params.yaml"),
) -> None:
    """API keys of the service. `mint --client-id NAME` prints a new bearer token once (on
    stdout) and stores only its salted hash; `revoke --key-id ID` removes one. Restart the
    service to apply."""
    from credit_scoring.stages import api_key as stage

    path = keys_file or Path(_load(params).serve.auth.keys_file)
    try:
        if action == "mint":
            if not client_id:
                _fail("mint needs --client-id")
            token, record = stage.mint(str(client_id), path)
            console.print(f"key {record['key_id']} for client '{client_id}' added to {path}")
            print(token)
        elif action == "revoke":
            if not key_id or not stage.revoke(key_id, path):
                _fail(f"no key {key_id} in {path}")
            console.print(f"key {key_id} removed from {path}")
        else:
            _fail(f"unknown action {action!r}: mint or revoke")
    except ValueError as err:
        _fail(str(err))


@app.command("audit-log")
def audit_log(
    action: Annotated[str, typer.Argument(help="purge | export")],
    days: Annotated[
        int | None,
        typer.Option(
            min=1, help="purge: delete decisions older than this (default: retention_days)."
        ),
    ] = None,
    person_ref: Annotated[
        str | None, typer.Option(help="export: the X-Person-Ref the decisions were made for.")
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="export: JSON-lines file (default: standard output).")
    ] = None,
    url: Annotated[
        str | None,
        typer.Option(
            help="SQLAlchemy URL of the audit database (default: env "
            "CREDIT_SCORING_AUDIT_DB_URL, serve.audit.db_url, else SQLite at "
            "serve.audit.sqlite_path)."
        ),
    ] = None,
    params: ParamsOption = Path("params.yaml"),
) -> None:
    """The decision audit log. `purge [--days N]`: retention, deletes decisions older than
    N days (default serve.audit.retention_days). `export --person-ref REF [--out FILE]`:
    every decision about one person, oldest first, as JSON lines."""
    from credit_scoring.stages import audit_log as stage

    if action == "purge":
        audit = None if (url and days) else _load(params).serve.audit
        n_days = days or audit.retention_days  # type: ignore[union-attr]
        n = stage.purge(url or stage.default_url(audit), n_days)  # type: ignore[arg-type]
        console.print(f"deleted {n} decisions older than {n_days} days")
    elif action == "export":
        if not person_ref:
            _fail("export needs --person-ref")
        db = url or stage.default_url(_load(params).serve.audit)
        n = stage.export(db, str(person_ref), out or sys.stdout)
        console.print(f"{n} decisions exported")
    else:
        _fail(f"unknown action {action!r}: purge or export")


@app.command()
def monitor(
    decisions: Annotated[
        Path | None,
        typer.Option(
            help="Scored decisions (the score stage's decisions.parquet or a stream); "
            "default: the decision audit database."
        ),
    ] = None,
    features: Annotated[
        Path | None,
        typer.Option(help="Feature file to join to --decisions when it carries no features."),
    ] = None,
    audit_url: Annotated[
        str | None,
        typer.Option(
            help="SQLAlchemy URL of the audit database (default: env "
            "CREDIT_SCORING_AUDIT_DB_URL, serve.audit.db_url, else SQLite)."
        ),
    ] = None,
    outcomes: Annotated[
        Path | None,
        typer.Option(
            help="Matured outcomes (person_id, observation_date, default_12m[, default_date])."
        ),
    ] = None,
    as_of: Annotated[
        str | None, typer.Option(help="Date outcomes are known up to (default: today).")
    ] = None,
    since: Annotated[str | None, typer.Option(help="First decision time (inclusive).")] = None,
    until: Annotated[str | None, typer.Option(help="Last decision time (exclusive).")] = None,
    out: Annotated[Path, typer.Option(help="Report folder.")] = Path("reports/monitoring"),
    mlflow: Annotated[bool, typer.Option(help="Log one MLflow run per window.")] = True,
    params: ParamsOption = Path("params.yaml"),
) -> None:
    """Production monitoring: population stability (PSI with bins frozen at training,
    missing rates, new categories, approval, band, tier, limit and reason mix) per window,
    performance on matured outcomes; HTML report. Exit code: 0 stable, 3 watch, 4 act."""
    import pandas as pd

    from credit_scoring.stages import monitor as stage

    p = _load(params)
    try:
        bounds = [pd.Timestamp(v) if v else None for v in (since, until, as_of)]
    except ValueError as err:
        _fail(f"--since/--until/--as-of: {err}")
    with _stage("monitor"):
        result = stage.run(
            p,
            decisions,
            features,
            audit_url,
            outcomes,
            bounds[2],
            bounds[0],
            bounds[1],
            out,
            mlflow,
        )
    table = RichTable(title="Monitoring by window")
    for col in ("window", "decisions", "score PSI", "approval", "watch", "act", "status"):
        table.add_column(col)
    for w in result["windows"]:
        table.add_row(
            w["window"],
            str(w["decisions"]),
            f"{w['score_psi']:.3f}",
            f"{w['approval_rate']:.3f}",
            str(w["n_watch"]),
            str(w["n_act"]),
            w["status"],
        )
    console.print(table)
    if result["backtest"]:
        console.print(f"backtest: {result['backtest']['status']} ({result['backtest'].get('why')})")
    console.print(f"report: {result['report']}; overall: {result['status']}")
    raise typer.Exit(code=result["exit_code"])


@app.command("monitor-stream")
def monitor_stream(
    out: Annotated[Path, typer.Option(help="Folder for decisions.parquet and outcomes.parquet.")],
    kind: Annotated[
        str, typer.Option(help="none | shift | macro | income | channel (data/drift.py).")
    ] = "none",
    months: Annotated[int, typer.Option(min=1, max=36, help="Months of decisions.")] = 6,
    people: Annotated[int, typer.Option(min=100, help="Applicants per month.")] = 2000,
    start_month: Annotated[int, typer.Option(min=0, help="First drifted month (0-based).")] = 0,
    strength: Annotated[
        float | None, typer.Option(help="Drift strength (default per kind).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the stream.")] = 1,
    model_dir: ModelDirOption = None,
    params: ParamsOption = Path("params.yaml"),
) -> None:
    """A simulated production stream decided by the bundle, and its later outcomes (for
    the monitoring example and tests)."""
    from credit_scoring.stages import monitor_stream as stage

    p = _load(params)
    with _stage("monitor-stream"), _bar("months") as bar:
        summary = stage.run(
            p, out, kind, months, people, start_month, strength, seed, model_dir, bar
        )
    console.print(_summary_table("Production stream", summary))


if __name__ == "__main__":  # pragma: no cover
    app()
