"""dvc.yaml lists, for every stage, exactly the project code that stage runs.

A stage runs ``credit-scoring <stage>``: the module-level imports of ``cli.py``, then (inside
the command) its own module ``credit_scoring.stages.<stage>`` and everything that imports,
directly or not, lazy imports inside functions included. Each imported module also
executes its packages' ``__init__.py``. If dvc.yaml missed one of those files, editing it
would not re-run the stage and ``dvc repro`` would call stale results "up to date"; if it
listed another, unrelated edits would re-run it. The import graph comes from grimp.
"""

from __future__ import annotations

import ast
from pathlib import Path

import grimp
import pytest
import yaml

from credit_scoring import artefacts
from credit_scoring.artefacts import Paths
from credit_scoring.config import Params

REPO = Path(__file__).resolve().parents[2]
SRC = REPO / "src"
PACKAGE = "credit_scoring"
CLI = f"{PACKAGE}.cli"

#: Code a stage runs without importing it, so no import graph can see it.
USED_BY_NAME: dict[str, tuple[str, ...]] = {
    # the model logged to MLflow is this file's source ("models from code",
    # tracking.registry.MODEL_CODE), run whenever the registered model is loaded
    "register": (f"{PACKAGE}.tracking.mlflow_model",),
    # the Bento that package builds serves this module (bentofile.yaml `service:`)
    "package": (f"{PACKAGE}.serving.service",),
}


def _dvc_stages() -> dict[str, dict]:
    return yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph(PACKAGE, exclude_type_checking_imports=True, cache_dir=None)


def _module_level_imports(module: str, graph: grimp.ImportGraph) -> set[str]:
    """Project modules a module imports when it is loaded (not inside its functions and
    not under ``if TYPE_CHECKING``)."""
    tree = ast.parse(_file(module).read_text())
    found: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return {m for m in found if m in graph.modules}


def _file(module: str) -> Path:
    path = SRC / module.replace(".", "/")
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def _with_packages(modules: set[str]) -> set[str]:
    """Importing ``a.b.c`` executes ``a/__init__.py`` and ``a/b/__init__.py`` too."""
    out = set(modules)
    for module in modules:
        parts = module.split(".")
        out |= {".".join(parts[:i]) for i in range(1, len(parts))}
    return out


def stage_closure(stage: str, graph: grimp.ImportGraph) -> set[str]:
    """Every project module ``credit-scoring <stage>`` executes."""
    roots = {CLI, f"{PACKAGE}.stages.{stage}", *USED_BY_NAME.get(stage, ())}
    roots |= _module_level_imports(CLI, graph)
    closure = set(roots)
    for root in roots - {CLI}:  # cli's lazy imports belong to the other commands
        closure |= graph.find_upstream_modules(root)
    for module in _module_level_imports(CLI, graph):
        closure |= graph.find_upstream_modules(module)
    return _with_packages(closure)


def _src_deps(body: dict) -> set[str]:
    return {d for d in body.get("deps", []) if isinstance(d, str) and d.startswith("src/")}


def test_every_stage_has_a_stage_module_and_a_cli_command():
    for stage, body in _dvc_stages().items():
        assert body["cmd"] == f"bin/credit-scoring {stage}", f"{stage}: cmd {body['cmd']!r}"
        assert _file(f"{PACKAGE}.stages.{stage}").is_file(), f"no stages/{stage}.py"


@pytest.mark.parametrize("stage", list(_dvc_stages()))
def test_dvc_deps_are_exactly_the_stage_import_closure(stage, graph):
    """dvc.yaml's src deps of a stage = the files of every module it executes."""
    want = {str(_file(m).relative_to(REPO)) for m in stage_closure(stage, graph)}
    have = _src_deps(_dvc_stages()[stage])
    missing, extra = sorted(want - have), sorted(have - want)
    assert not missing and not extra, (
        f"dvc.yaml stage {stage!r}: add {missing} (imported, directly or not); "
        f"remove {extra} (not imported by the stage)"
    )


def test_each_cli_command_imports_only_its_own_stage():
    """The closure above counts cli.py's module-level imports only: that holds because
    each command imports its own stage module and nothing else of the project, and no
    helper of cli.py imports project code lazily."""
    tree = ast.parse(_file(CLI).read_text())
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef):
            continue
        lazy = {
            imp.module if isinstance(imp, ast.ImportFrom) else alias.name
            for imp in ast.walk(node)
            if isinstance(imp, ast.Import | ast.ImportFrom)
            for alias in imp.names
        }
        lazy |= {
            f"{imp.module}.{alias.name}"
            for imp in ast.walk(node)
            if isinstance(imp, ast.ImportFrom)
            for alias in imp.names
        }
        ours = {m for m in lazy if m and m.startswith(PACKAGE)}
        command = any(
            isinstance(d, ast.Call) and getattr(d.func, "attr", "") == "command"
            for d in node.decorator_list
        )
        if command:
            own = {f"{PACKAGE}.stages", f"{PACKAGE}.stages.{node.name}"}
            assert ours == own, f"cli.{node.name} imports {sorted(ours - own)} besides its stage"
        else:
            assert not ours, f"cli.{node.name} (not a command) imports {sorted(ours)}"


def test_the_closure_follows_lazy_imports_and_skips_other_commands(graph):
    """The closure is not vacuous: train reaches calibrate through the bundle, register
    reaches the bundle through tracking's lazy imports, simulate reaches neither, and no
    stage picks up another stage's module through cli.py."""
    train, simulate = stage_closure("train", graph), stage_closure("simulate", graph)
    assert f"{PACKAGE}.modelling.calibrate" in train
    assert f"{PACKAGE}.modelling.calibrate" not in simulate
    assert f"{PACKAGE}.decision.bundle" in stage_closure("package", graph)
    for stage in _dvc_stages():
        others = {m for m in stage_closure(stage, graph) if m.startswith(f"{PACKAGE}.stages.")} - {
            f"{PACKAGE}.stages.{stage}"
        }
        assert not others, f"{stage} executes {sorted(others)}"


def test_code_used_by_name_is_what_the_stages_name():
    """The by-name uses above are real: MLflow logs tracking/mlflow_model.py, the Bento
    serves serving.service."""
    from credit_scoring.tracking import registry

    assert registry.MODEL_CODE.resolve() == _file(USED_BY_NAME["register"][0]).resolve()
    service = yaml.safe_load((REPO / "bentofile.yaml").read_text())["service"]
    assert service.split(":")[0] == USED_BY_NAME["package"][0]


def test_dvc_data_paths_are_the_artefact_paths():
    """Every output and data dependency in dvc.yaml is a path of ``artefacts.Paths`` (on
    the default params), so a path is declared once in the code and dvc.yaml agrees."""
    paths = Paths.from_params(Params())
    known = {
        str(getattr(paths, name))
        for name in dir(paths)
        if not name.startswith("_") and isinstance(getattr(paths, name), Path)
    }
    known.add("${data.input_dir}")
    known.add(str(artefacts.DVC_LOCK))
    other = {"bentofile.yaml", "requirements/serve.txt"}
    for stage, body in _dvc_stages().items():
        entries = [*body.get("outs", []), *body.get("metrics", []), *body.get("deps", [])]
        for entry in entries:
            path = next(iter(entry)) if isinstance(entry, dict) else entry
            if path.startswith("src/") or path in other:
                continue
            assert path in known, f"dvc.yaml stage {stage!r}: {path} is not an artefacts.Paths path"
