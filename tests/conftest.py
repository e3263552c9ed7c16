"""Shared fixtures: every test uses a temporary model cache, never the user's."""
from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory):
    root = tmp_path_factory.mktemp("residue-cache")
    old = os.environ.get("RESIDUE_CACHE")
    os.environ["RESIDUE_CACHE"] = str(root)
    yield root
    if old is None:
        os.environ.pop("RESIDUE_CACHE", None)
    else:
        os.environ["RESIDUE_CACHE"] = old


@pytest.fixture(scope="session")
def digits_experiment(tmp_path_factory):
    """The default classroom experiment (digits, MLP, forget 7), run once for the whole session."""
    from core import Experiment, ExperimentConfig
    from core.cache import ModelStore

    exp = Experiment(ExperimentConfig(), store=ModelStore(tmp_path_factory.mktemp("store")), device="cpu")
    exp.run()
    return exp
