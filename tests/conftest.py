"""Shared fixtures: every test uses a temporary model cache and data directory, never the user's."""
from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before any test module imports torch: see core/__init__.py

import pytest  # noqa: E402

# A skip reason that says how to turn its suite on carries this phrase, and is then named in the run's last line.
ENABLE = "enable with:"


def pytest_unconfigure(config) -> None:
    """One line naming every skipped suite (browser, Dask backend, load test...) with the command that enables it,
    so a run that quietly tested less says so. A skip of one registry entry that does not apply (a sample-wise probe
    on class-wise forgetting) carries no command and stays in pytest's own -ra list. Written at unconfigure, after
    pytest's summary and counts, so it is the run's last line."""
    terminalreporter = config.pluginmanager.get_plugin("terminalreporter")
    if terminalreporter is None:
        return
    suites: dict[str, list[str]] = {}
    for report in terminalreporter.stats.get("skipped", []):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        if ENABLE in reason:
            files = suites.setdefault(reason.removeprefix("Skipped: "), [])
            path = report.nodeid.split("::")[0]
            files += [] if path in files else [path]
    if suites:
        terminalreporter.write_line("skipped suites: " + "; ".join(f"{', '.join(files)} ({reason})"
                                                                  for reason, files in suites.items()))


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory):
    roots = {"RESIDUE_CACHE": tmp_path_factory.mktemp("residue-cache"),
             "RESIDUE_DATA": tmp_path_factory.mktemp("residue-data")}
    old = {k: os.environ.get(k) for k in roots}
    os.environ.update({k: str(v) for k, v in roots.items()})
    yield roots["RESIDUE_CACHE"]
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="session")
def digits_experiment(tmp_path_factory):
    """The default classroom experiment (digits, MLP, forget 7), run once for the whole session."""
    from core import Experiment, ExperimentConfig
    from core.cache import ModelStore

    exp = Experiment(ExperimentConfig(), store=ModelStore(tmp_path_factory.mktemp("store")), device="cpu")
    exp.run()
    return exp
