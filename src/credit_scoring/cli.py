"""The `credit-scoring` command: one subcommand per pipeline stage, I/O only.

Each command reads params.yaml once (validated by ``config``), calls pure library
functions and writes its outputs atomically. dvc.yaml calls these commands.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table as RichTable

from credit_scoring import __version__
from credit_scoring.config import ConfigError, Params, load_params
from credit_scoring.telemetry import disable_telemetry

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
    from credit_scoring.ingest import InputError

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
    from credit_scoring import simulate as sim_mod

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
    from credit_scoring import ingest as ingest_mod

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
    (gender, age band: for fairness measurement only, never model inputs).
    """
    from credit_scoring import features as feat_mod
    from credit_scoring.io import read_validated, write_parquet

    p = _load(params)
    out = Path(p.features.output_dir)
    with _stage("features"), _progress() as bar:
        data = read_validated(Path(p.data.validated_dir))
        task = bar.add_task("computing features", total=len(data.outcomes))
        table = feat_mod.compute_features_chunked(
            data,
            p.features.windows,
            chunk_people=p.features.chunk_people,
            progress=lambda done: bar.update(task, completed=done),
        )
        labels = data.outcomes[["person_id", "observation_date", "default_12m"]]
        table = table.merge(labels, on=["person_id", "observation_date"], how="left")
        write_parquet(table, out / "features.parquet")
        write_parquet(feat_mod.protected_attributes(data), out / "protected.parquet")
    console.print(
        _summary_table(
            "features",
            {
                "rows": len(table),
                "features": len(feat_mod.feature_names()),
                "observation dates": table["observation_date"].nunique(),
            },
        )
    )


if __name__ == "__main__":  # pragma: no cover
    app()
