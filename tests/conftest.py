"""Shared fixtures: every test uses a temporary model cache and data directory, never the user's."""
from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before any test module imports torch: see core/__init__.py

import pytest  # noqa: E402


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
