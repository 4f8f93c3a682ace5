"""The layout keeps its promises: small modules and classes, dependencies that run one way (CONTRIBUTING)."""

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("agent", "collector", "common", "diagnostics", "protocol")
MAX_MODULE_LINES = 500
MAX_CLASS_LINES = 300


def sources() -> list[Path]:
    return sorted(path for package in PACKAGES for path in (ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("path", sources(), ids=lambda path: str(path.relative_to(ROOT)))
def test_a_module_stays_under_500_lines_and_its_classes_under_300(path: Path) -> None:
    text = path.read_text()
    assert text.count("\n") <= MAX_MODULE_LINES, f"{path.relative_to(ROOT)}: split it by what it does"
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.ClassDef):
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            where = f"{path.relative_to(ROOT)}: class {node.name}"
            assert length <= MAX_CLASS_LINES, f"{where} has {length} lines"


def lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).with_name("lint-imports")), "--no-cache"],
        cwd=tree,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of the packages and the contracts, to break on purpose."""
    for package in (*PACKAGES, "simulator"):
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_contracts_hold_for_the_code_as_it_is(tree: Path) -> None:
    result = lint_imports(tree)
    assert result.returncode == 0, result.stdout + result.stderr


def test_an_agent_module_importing_the_collector_breaks_the_contracts(tree: Path) -> None:
    (tree / "agent" / "state.py").write_text(
        (tree / "agent" / "state.py").read_text() + "\n\ndef _late() -> None:\n    import collector.config\n"
    )
    result = lint_imports(tree)
    assert result.returncode != 0
    assert "the agent never imports the collector" in result.stdout
    assert "BROKEN" in result.stdout


def test_a_cycle_hidden_behind_a_lazy_import_breaks_the_contracts(tree: Path) -> None:
    store = tree / "collector" / "store" / "schema.py"
    store.write_text(store.read_text() + "\n\ndef _late() -> None:\n    import collector.tickets.records\n")
    result = lint_imports(tree)
    assert result.returncode != 0
    assert "BROKEN" in result.stdout
