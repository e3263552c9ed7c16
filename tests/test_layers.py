"""The layering is a contract (.importlinter): the engine never imports the dashboard or Streamlit; the dashboard
depends one way (pages -> views -> analyses -> state); only the command line reaches the analysis pipeline; the
engine's readers sit above what they read (analysis -> trust -> verdict -> quality -> probes -> attacks); no
import cycles. `lint-imports` checks it here, so a change that ties the layers back together fails the suite."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")

pytestmark = pytest.mark.skipif(not LINT.exists(), reason="import-linter is not installed (pip install -e '.[test]')")


def _lint(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(LINT), "--no-cache"], cwd=root, capture_output=True, text=True,
                          env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"}, timeout=300)


def test_the_import_contracts_hold():
    p = _lint(ROOT)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "5 kept, 0 broken" in p.stdout


@pytest.mark.parametrize("module, line, broken", [
    ("dashboard/state.py", "from dashboard import views", "dashboard.state is not allowed to import dashboard.views"),
    ("core/experiment.py", "import streamlit", "core.experiment -> streamlit"),
    ("core/verdict.py", "from core import analysis", "core.verdict -> core.analysis"),
    ("core/probes/measures.py", "from core import verdict", "core.probes.measures -> core.verdict"),
])
def test_an_import_against_the_layers_breaks_a_contract(tmp_path, module, line, broken):
    """The contracts bite: one upward import in a copy of the code is reported, naming the import."""
    for pkg in ("core", "dashboard"):
        shutil.copytree(ROOT / pkg, tmp_path / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / ".importlinter", tmp_path)
    target = tmp_path / module
    target.write_text(target.read_text(encoding="utf-8") + f"\n{line}  # noqa\n", encoding="utf-8")
    p = _lint(tmp_path)
    assert p.returncode != 0 and broken in p.stdout, p.stdout + p.stderr
