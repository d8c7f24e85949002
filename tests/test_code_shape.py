"""The shape the code keeps: small functions, small UI modules, a library that never imports the UI."""

import ast
from pathlib import Path

import pytest

from rm_demo.errors import InputError

PACKAGE = Path(__file__).resolve().parents[1] / "rm_demo"
MAX_FUNCTION_LINES = 80
MAX_GRADIO_MODULE_LINES = 350


def _modules():
    return sorted(PACKAGE.rglob("*.py"))


def _imports(tree: ast.AST) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_no_function_is_longer_than_80_lines():
    long = []
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{path.name}:{node.name} ({lines} lines)")
    assert not long


def test_modules_that_import_gradio_stay_small():
    big = []
    for path in _modules():
        text = path.read_text()
        if "gradio" in _imports(ast.parse(text)) and text.count("\n") > MAX_GRADIO_MODULE_LINES:
            big.append(f"{path.name}: {text.count(chr(10))} lines")
    assert not big


def test_the_library_never_imports_the_ui():
    offenders = []
    for path in _modules():
        if path.parent.name == "app":
            continue
        imported = _imports(ast.parse(path.read_text()))
        if any(name == "gradio" or name.startswith(("rm_demo.app", "rm_demo.ui")) for name in imported):
            offenders.append(path.name)
    assert not offenders


def test_a_queued_job_and_the_pairs_cli_import_no_torch():
    """A queued trainer waits without torch loaded (11 queued jobs once took 3.7 GB); `pairs` starts light."""
    import subprocess
    import sys

    code = "import sys, rm_demo.jobs, rm_demo.cli, rm_demo.pairs, rm_demo.config; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"


def _imported_modules(path: Path) -> set[str]:
    """rm_demo modules `path` imports anywhere (at the top or inside a function: a lazy import is still a
    dependency, and a circle of lazy imports is still a circle)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("rm_demo"):
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("rm_demo"))
    return found


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_no_import_circles():
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {
        name: sorted(m for m in _imported_modules(path) if m in modules and m != name)
        for name, path in modules.items()
    }
    # the package's __init__ files only gather: an edge into one is not a dependency of its own
    graph = {n: [m for m in deps if not modules[m].name == "__init__.py"] for n, deps in graph.items()}
    circles, state = [], {}

    def visit(node, stack):
        state[node] = "open"
        for nxt in graph[node]:
            if state.get(nxt) == "open":
                circles.append(" -> ".join([*stack[stack.index(nxt) :], nxt]))
            elif nxt not in state:
                visit(nxt, [*stack, nxt])
        state[node] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert not circles


def test_the_pairing_settings_have_one_shape_and_the_columns_one_alias_table():
    """Issue 39: PairOptions' fields are the CLI's pairing flags, the config file's `pairs:` group and
    TrainConfig's pairing fields, with its defaults; the app's settings give a PairOptions; the importers
    look fields up in the plain tables' alias lists."""
    from dataclasses import fields

    from rm_demo import importers
    from rm_demo.app.state import DataSettings
    from rm_demo.columns import ROLE_ALIASES
    from rm_demo.config import GROUPS, PAIR_FLAGS, TrainConfig
    from rm_demo.pair_options import PairOptions

    names = [f.name for f in fields(PairOptions)]
    assert PAIR_FLAGS == names and list(GROUPS["pairs"]) == names
    config = {f.name: f.default for f in fields(TrainConfig)}
    assert {name: config[name] for name in names} == {f.name: f.default for f in fields(PairOptions)}
    assert TrainConfig().pair_options() == PairOptions() == DataSettings().pair_options()
    with pytest.raises(InputError, match="minimum margin"):  # one check, whichever door the setting came in by
        TrainConfig(min_margin=-1).validate()
    assert importers.QUESTION_KEYS[: len(ROLE_ALIASES["question"])] == ROLE_ALIASES["question"]
    assert importers.ANSWER_KEYS == ROLE_ALIASES["answer"]  # "generation" now names a table's answers too
