"""Faults (issue 9): divergence is caught and labelled in every method family; a crash, Stop or full disk in
the middle of a cache write never leaves an entry that is served later; an unwritable cache degrades to
memory with a warning; a malicious file planted in the cache is refused, not run; concurrent sessions and
processes share the cache safely."""
from __future__ import annotations

import copy
import dataclasses
import errno
import io
import os
import pickle
import threading
from pathlib import Path

import pytest
import torch

from core import Experiment, ExperimentConfig
from core.cache import ModelStore, stable_hash
from core.config import MethodConfig
from core.errors import Cancelled, ResidueError
from core.models import build_model
from core.training import Recipe
from core.unlearn import get_method, methods


# -- divergence ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def exp(digits_experiment):
    return digits_experiment


def _nan_after(model: torch.nn.Module, calls: int) -> torch.nn.Module:
    """A copy of `model` whose forward pass turns NaN after `calls` calls: a blow-up in the middle of a run.
    (The hook survives the deep copy every method makes; its counter is shared.)"""
    count = [0]

    def hook(_module, _inputs, output):
        count[0] += 1
        return output * float("nan") if count[0] > calls else output

    poisoned = copy.deepcopy(model)
    poisoned.register_forward_hook(hook)
    return poisoned.eval()


@pytest.mark.parametrize("name", [m for m in methods if not methods.get(m).exact and m != "ssd"])
def test_divergence_mid_run_is_caught_and_labelled(name, exp):
    original = exp.models["original"]
    r = get_method(name).unlearn(_nan_after(original, 6), exp.task())
    assert r.status == "diverged", (name, r.status)
    assert "stopped" in r.message and "\n" not in r.message
    assert all(torch.isfinite(p).all() for p in r.model.parameters())  # restored to the last finite state


def test_ssd_with_non_finite_importances_is_labelled_not_ok(exp):
    """SSD has no optimiser step, but a blown-up forward pass makes its importances NaN, which would select
    no weight and pass θ_o off as unlearned: it is labelled instead, weights untouched and finite."""
    poisoned = _nan_after(exp.models["original"], 0)
    r = get_method("ssd").unlearn(poisoned, exp.task())
    assert r.status == "diverged" and "NaN/inf" in r.message and "\n" not in r.message
    assert all(torch.isfinite(p).all() for p in r.model.parameters())
    assert all(torch.equal(a, b) for a, b in zip(r.model.parameters(), poisoned.parameters()))


def test_exact_retrain_that_blows_up_is_one_clear_line(exp):
    task = exp.task()
    task.retain_X = task.retain_X * float("nan")
    with pytest.raises(ResidueError, match="loss became NaN/inf at epoch 1"):
        get_method("retrain").unlearn(exp.models["original"], task)


def test_a_diverged_method_is_labelled_in_the_results(exp):
    cfg = ExperimentConfig(methods=[MethodConfig("gradient_ascent", {"lr": 1.0, "epochs": 50}, label="ga_hot")])
    r = Experiment(cfg, store=exp.store, device="cpu").run()
    hot = r.model("ga_hot")
    assert hot.status == "diverged" and "stopped" in hot.message
    assert r.model("original").status == "ok" and 0.0 <= hot.forget_acc <= 1.0


# -- the model cache under faults ------------------------------------------------------------------
def _small(seed: int = 0) -> torch.nn.Module:
    return build_model("mlp", (4,), 2, seed=seed, hidden=[8])


class Builds:
    """A build function that counts its calls."""

    def __init__(self):
        self.calls = 0

    def __call__(self):
        self.calls += 1
        return _small(self.calls), {"n": self.calls}


def _entries(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


class Boom(Exception):
    pass


@pytest.mark.parametrize("where", ["fsync", "replace"])
def test_crash_during_write_leaves_no_entry(tmp_path, monkeypatch, where):
    """A crash after the temporary file is written (fsync) or just before the rename: nothing half-written
    remains, nothing is served later, the next request builds the model again."""
    store, build = ModelStore(tmp_path), Builds()
    def crash(*a, **k):
        raise Boom()

    monkeypatch.setattr(os, where, crash)
    with pytest.raises(Boom):
        store.get_or_build({"k": 1}, _small, build)
    assert _entries(tmp_path) == []
    monkeypatch.undo()
    _, meta, hit = store.get_or_build({"k": 1}, _small, build)
    assert not hit and build.calls == 2 and meta["n"] == 2
    assert [p.suffix for p in _entries(tmp_path)] == [".pt"]
    assert store.get_or_build({"k": 1}, _small, build)[2]


def test_stop_while_writing_keeps_the_cache_consistent(tmp_path, monkeypatch):
    """Stop (Cancelled) raised inside the write is not swallowed and leaves no temporary file."""
    store = ModelStore(tmp_path)
    real_replace = os.replace

    def cancelled(*a, **k):
        raise Cancelled()

    monkeypatch.setattr(os, "replace", cancelled)
    with pytest.raises(Cancelled):
        store.save("k" * 32, _small())
    assert _entries(tmp_path) == [] and not store.in_memory
    monkeypatch.setattr(os, "replace", real_replace)
    store.save("k" * 32, _small())
    assert store.load("k" * 32, _small()) is not None


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS, errno.EACCES])
@pytest.mark.parametrize("where", ["mkstemp", "write", "replace"])
def test_full_disk_or_read_only_cache_degrades_to_memory(tmp_path, monkeypatch, code, where):
    """Works as root too (where chmod does not stop writes): the OSError is injected where it would occur."""
    import tempfile

    def fail(*a, **k):
        raise OSError(code, os.strerror(code))

    target = {"mkstemp": (tempfile, "mkstemp"), "replace": (os, "replace"), "write": (os, "fsync")}[where]
    monkeypatch.setattr(*target, fail)
    store, build = ModelStore(tmp_path), Builds()
    with pytest.warns(RuntimeWarning, match="keeping models in memory"):
        m1, _, hit = store.get_or_build({"k": 2}, _small, build)
    assert not hit and store.in_memory and any(os.strerror(code) in n for n in store.notes)
    assert not [p for p in _entries(tmp_path)]  # no temporary file left behind
    m2, _, hit2 = store.get_or_build({"k": 2}, _small, build)  # served from memory
    assert hit2 and build.calls == 1
    assert all(torch.equal(a, b) for a, b in zip(m1.state_dict().values(), m2.state_dict().values()))


def test_memory_fallback_is_bounded(tmp_path, monkeypatch):
    """In memory the store keeps at most `memory_limit` bytes, dropping the least recently used entry (which
    is rebuilt if asked for again): a long session on a read-only disk does not grow without end."""
    def fail(*a, **k):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(os, "replace", fail)
    store, build = ModelStore(tmp_path), Builds()
    with pytest.warns(RuntimeWarning):
        store.get_or_build({"k": 1}, _small, build)
    store.memory_limit = int(2.5 * len(next(iter(store.memory.values()))))  # room for two entries
    for k in (2, 3):
        store.get_or_build({"k": k}, _small, build)
    assert store.in_memory and len(store.memory) == 2 and build.calls == 3
    store.get_or_build({"k": 2}, _small, build)  # still held
    assert build.calls == 3
    store.get_or_build({"k": 1}, _small, build)  # dropped first: rebuilt
    assert build.calls == 4 and len(store.memory) == 2


def test_experiment_runs_on_an_unwritable_cache(tmp_path, monkeypatch):
    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", full)
    cfg = ExperimentConfig(recipe=Recipe(epochs=2), methods=[MethodConfig("finetune")])
    with pytest.warns(RuntimeWarning):
        r = Experiment(cfg, store=ModelStore(tmp_path), device="cpu").run()
    assert any("memory" in n for n in r.notes)  # the results (and so the UI) say so


class Evil:
    def __reduce__(self):
        return os.mkdir, ("PWNED",)


def test_malicious_cache_entry_is_refused_not_run(tmp_path, monkeypatch):
    """A pickle planted under a valid key with a valid checksum: weights_only loading refuses it."""
    import hashlib

    monkeypatch.chdir(tmp_path)
    store, parts = ModelStore(tmp_path / "cache"), {"k": 3}
    key = stable_hash(parts)
    buf = io.BytesIO()
    torch.save({"state": Evil(), "meta": {}}, buf)
    payload = buf.getvalue()
    path = tmp_path / "cache" / key[:2] / f"{key}.pt"
    path.parent.mkdir(parents=True)
    path.write_bytes(hashlib.sha256(payload).hexdigest().encode() + payload)
    _, _, hit = store.get_or_build(parts, _small, Builds())
    assert not hit and not (tmp_path / "PWNED").exists()
    assert any("corrupt" in n for n in store.notes)
    pickle.loads(pickle.dumps(Evil()))  # the payload was real: unpickled unsafely it does create the folder
    assert (tmp_path / "PWNED").exists()


@dataclasses.dataclass
class Foreign:
    x: int = 1


def test_result_cache_round_trips_plain_data_and_refuses_anything_else(tmp_path, monkeypatch):
    """Stored results (the dashboard's analyses) come back equal; objects holding tensors are not stored;
    a planted pickle with a valid checksum is refused, removed, and never run."""
    import hashlib

    import numpy as np

    from core.verdict import Band

    monkeypatch.chdir(tmp_path)
    store = ModelStore(tmp_path / "cache")
    spread = Band("forget_acc", "forget_acc", None, [0.1, np.float64(0.2)], [0.3], 0.1, 0.3, 0.05, 0.0, 1.0)
    assert store.save_result("a" * 32, {"s": spread, "xs": np.arange(4.0), "tags": {"x"}})
    got = store.load_result("a" * 32)
    assert got["s"] == spread and np.array_equal(got["xs"], np.arange(4.0)) and got["tags"] == {"x"}
    assert not store.save_result("b" * 32, {"t": torch.zeros(2)})  # torch's loader is never allowed
    assert store.load_result("b" * 32) is None
    assert not store.save_result("c" * 32, Foreign())  # picklable, but not the engine's or the dashboard's
    payload = pickle.dumps({"s": spread, "evil": Evil()})
    path = tmp_path / "cache" / "results" / "dd" / f"{'d' * 32}.pkl"
    path.parent.mkdir(parents=True)
    path.write_bytes(hashlib.sha256(payload).hexdigest().encode() + payload)
    assert store.load_result("d" * 32) is None
    assert not (tmp_path / "PWNED").exists() and not path.exists()
    assert any("could not be read" in n for n in store.notes)
    # naming a module of ours that is not imported must not import (run) it
    import sys

    path.parent.mkdir(parents=True, exist_ok=True)
    planted = b"cdashboard.app\nmain\n."  # a protocol-0 GLOBAL: the app's own script module
    path.write_bytes(hashlib.sha256(planted).hexdigest().encode() + planted)
    assert "dashboard.app" not in sys.modules
    assert store.load_result("d" * 32) is None and "dashboard.app" not in sys.modules


def test_source_fingerprint_follows_the_code(tmp_path):
    from core.cache import source_fingerprint

    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "a.py").write_text("x = 1\n")
    before = source_fingerprint(tmp_path / "pkg")
    (tmp_path / "pkg" / "a.py").write_text("x = 2\n")
    source_fingerprint.cache_clear()
    assert source_fingerprint(tmp_path / "pkg") != before


def test_concurrent_sessions_and_processes_share_the_cache(tmp_path):
    """Eight threads on one store build a key once; two stores on one folder (two server processes) both
    write it and every read gets a whole, valid entry."""
    store, build = ModelStore(tmp_path), Builds()
    out: list = []
    threads = [threading.Thread(target=lambda: out.append(store.get_or_build({"k": 4}, _small, build)))
               for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert build.calls == 1 and sum(hit for _, _, hit in out) == 7
    other = ModelStore(tmp_path)
    writers = [threading.Thread(target=lambda s=s: [s.save(f"{i:032d}", _small(i)) for i in range(20)])
               for s in (ModelStore(tmp_path), other)]
    for t in writers:
        t.start()
    for t in writers:
        t.join()
    for i in range(20):
        found = other.load(f"{i:032d}", _small())
        assert found is not None and torch.equal(found[0].state_dict()["blocks.head.bias"],
                                                 _small(i).state_dict()["blocks.head.bias"])
    assert not [p for p in tmp_path.rglob(".tmp-*")]


_HOLD = """
import sys, time
from pathlib import Path
from core.cache import ModelStore
from core.models import build_model

def build():
    Path(sys.argv[2]).write_text("building")
    time.sleep(120)

ModelStore(sys.argv[1]).get_or_build({"k": 5}, lambda: build_model("mlp", (4,), 2, hidden=[8]), build)
"""


def test_a_lock_left_by_a_killed_process_is_taken_over(tmp_path):
    """A real process holds a key's lock while it builds; another waits for it; killed with SIGKILL it never
    releases anything itself, yet the OS drops its lock and the waiter builds the model."""
    import signal
    import subprocess
    import sys
    import time

    ready = tmp_path / "ready"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    holder = subprocess.Popen([sys.executable, "-c", _HOLD, str(tmp_path / "cache"), str(ready)], env=env)
    try:
        deadline = time.monotonic() + 120
        while not ready.exists():
            assert holder.poll() is None and time.monotonic() < deadline, "the holder never started building"
            time.sleep(0.05)
        store, build, out = ModelStore(tmp_path / "cache"), Builds(), []
        waiter = threading.Thread(target=lambda: out.append(store.get_or_build({"k": 5}, _small, build)))
        waiter.start()
        waiter.join(1.0)
        assert waiter.is_alive() and build.calls == 0  # waits for the holder, does not build beside it
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    waiter.join(60)
    assert not waiter.is_alive() and build.calls == 1 and out[0][2] is False
    assert any(f"pid {holder.pid}" in n and "stopped before storing it" in n for n in store.notes), store.notes
    assert store.get_or_build({"k": 5}, _small, build)[2] and build.calls == 1
    assert not list((tmp_path / "cache").rglob("*.lock"))  # the lock file goes with the last holder


def test_two_cli_runs_on_one_cache_train_each_model_once(tmp_path):
    """Two `residue run` processes started together on the same config and cache: each model is trained by
    one of them; the other waits, loads it (reported as cached) and says it waited."""
    import json
    import subprocess
    import sys

    cfg = tmp_path / "c.toml"
    cfg.write_text("[recipe]\nepochs = 20\n[[methods]]\nname = 'finetune'\nepochs = 1\n")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    runs = [subprocess.Popen([sys.executable, "-m", "core", "run", "--config", str(cfg), "--quiet",
                              "--out", str(tmp_path / f"out{i}"), "--cache", str(tmp_path / "cache")],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in (0, 1)]
    for p in runs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    results = [json.loads((tmp_path / f"out{i}" / "results.json").read_text()) for i in (0, 1)]
    for name in ("original", "retrain", "finetune"):
        cached = sorted(next(m["cached"] for m in r["models"] if m["name"] == name) for r in results)
        assert cached == [False, True], (name, cached)
    assert any("was being built by another process" in n and "waited and reused it" in n
               for r in results for n in r["notes"])
    assert not list((tmp_path / "cache").rglob("*.lock"))
