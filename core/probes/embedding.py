"""Embedding view: UMAP of penultimate-layer features of D_f, a D_r sample and D_t under θ_o, θ_u, θ_r,
with ONE shared projection (fitted on the features of every model together, each model's points
then read off that one fit), so the panels share their axes.

umap-learn compiles numba code on first use (tens of seconds on 2 cores). `warm_up()` does that in a
background thread at dashboard start-up; numba's on-disk cache lives under the Residue cache directory
(`$RESIDUE_CACHE/numba`), so later processes start warm. Projections are cached by a key (hash of the
features and the settings) in memory and on disk: asking twice costs a file read.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..cache import default_root
from ..errors import ResidueError
from ..results import _clean
from .common import ProbeData

_memory: dict[str, np.ndarray] = {}
_lock = threading.Lock()
_warm = threading.Event()
_warm_thread: threading.Thread | None = None


def cache_dir(root: str | Path | None = None) -> Path:
    return Path(root) if root is not None else default_root()


def configure_numba(root: str | Path | None = None) -> Path:
    """Point numba's on-disk cache under the Residue cache (before umap is imported, where possible)."""
    path = cache_dir(root) / "numba"
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return path  # read-only cache: numba compiles in memory
    os.environ.setdefault("NUMBA_CACHE_DIR", str(path))
    if "numba" in sys.modules:  # already imported: functions decorated from now on use it
        import numba

        if not getattr(numba.config, "CACHE_DIR", ""):
            numba.config.CACHE_DIR = str(path)
    return path


_caching_on = False


def _umap():
    """Import umap-learn with numba's on-disk cache switched on for *all* its compiled functions.

    umap-learn and pynndescent mark only some functions `cache=True`; the rest would be recompiled in
    every new process (~30 s on 2 cores). Enabling the cache on each dispatcher before its first call
    makes a later process start in a few seconds."""
    global _caching_on
    path = configure_numba()
    import umap  # noqa: F401  (slow first import: numba)

    if not _caching_on:
        _caching_on = True
        if os.access(path, os.W_OK):
            try:
                from numba.core.dispatcher import Dispatcher

                for name, mod in list(sys.modules.items()):
                    if name.startswith(("umap", "pynndescent")) and mod is not None:
                        for obj in list(vars(mod).values()):
                            if isinstance(obj, Dispatcher) and not obj._cache.__class__.__name__ == "FunctionCache":
                                try:
                                    obj.enable_caching()
                                except Exception:  # noqa: BLE001 - a function numba cannot cache stays in memory
                                    pass
            except ImportError:
                pass
    return umap


def warm_up(background: bool = True) -> threading.Thread | None:
    """Import umap-learn and run a tiny fit so numba has compiled everything. With `background`, in a
    daemon thread (returned); `is_warm()` tells when it is done. Safe to call more than once."""
    global _warm_thread

    def work() -> None:
        try:
            _umap()  # import umap (and numba) first
            rng = np.random.default_rng(0)
            X = rng.normal(size=(64, 8)).astype(np.float32)
            project(X, n_neighbors=5, n_epochs=5, cache=False)
        finally:
            _warm.set()

    if _warm.is_set():
        return None
    with _lock:
        if _warm_thread is not None and _warm_thread.is_alive():
            if not background:
                _warm_thread.join()
            return _warm_thread
        if not background:
            work()
            return None
        _warm_thread = threading.Thread(target=work, name="residue-umap-warm-up", daemon=True)
        _warm_thread.start()
        return _warm_thread


def is_warm() -> bool:
    return _warm.is_set()


@dataclass
class Embedding:
    """2-D coordinates of the same samples under each model (one shared projection)."""

    models: list[str]
    coords: dict[str, list[list[float]]]  # model -> [[x, y], ...] in the order of `part`/`label`/`sample_id`
    part: list[str]  # "forget" | "retain" | "test" per sample
    label: list[int]
    sample_id: list[int]  # dataset index of each sample (to follow one forget sample across views)
    key: str
    seconds: float
    cached: bool
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def forget(self) -> list[bool]:
        return [p == "forget" for p in self.part]

    def points(self, model: str) -> np.ndarray:
        return np.asarray(self.coords[model])

    def to_dict(self) -> dict[str, Any]:
        d = _clean(dict(self.__dict__))
        d["forget"] = self.forget
        return d


def _key(feats: np.ndarray, settings: dict[str, Any]) -> str:
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(feats, dtype=np.float32).tobytes())
    h.update(str(feats.shape).encode())
    h.update(json.dumps(settings, sort_keys=True).encode())
    return h.hexdigest()[:32]


def project(feats: np.ndarray, seed: int = 0, n_neighbors: int = 15, min_dist: float = 0.1, n_epochs: int = 200,
            cache: bool = True, root: str | Path | None = None) -> tuple[np.ndarray, str, bool]:
    """UMAP of a feature matrix to 2-D, cached by (features, settings). Returns (coords, key, cached)."""
    settings = {"seed": int(seed), "n_neighbors": int(n_neighbors), "min_dist": float(min_dist),
                "n_epochs": int(n_epochs), "v": 1}
    key = _key(feats, settings)
    path = cache_dir(root) / "umap" / f"{key}.npy"
    if cache:
        if key in _memory:
            return _memory[key], key, True
        try:
            arr = np.load(path, allow_pickle=False)
            if arr.shape == (len(feats), 2):
                _memory[key] = arr
                return arr, key, True
        except (OSError, ValueError):
            pass
    umap = _umap()
    n = len(feats)
    if n < 4:
        raise ResidueError("The embedding needs at least 4 samples.")
    k = min(int(n_neighbors), n - 1)
    X = np.asarray(feats, dtype=np.float32)
    knn = exact_knn(X, k)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "no search index: transform unavailable", "n_jobs overridden by seed"
        reducer = umap.UMAP(n_neighbors=k, min_dist=float(min_dist), n_epochs=int(n_epochs), random_state=int(seed),
                            init="spectral" if n > k + 2 else "random", precomputed_knn=knn)
        arr = reducer.fit_transform(X).astype(np.float32)
    _warm.set()
    if cache:
        _memory[key] = arr
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
            np.save(tmp, arr)
            os.replace(tmp, path)
        except OSError:
            pass  # read-only cache: memory only
    return arr, key, False


def exact_knn(X: np.ndarray, k: int, block: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """Exact k nearest neighbours (each point first, at distance 0), Euclidean, with torch.

    umap-learn's own small-data path calls a Python distance per pair (seconds for a few thousand
    points); this is one matrix product per block."""
    T = torch.as_tensor(X, dtype=torch.float64)
    sq = (T * T).sum(1)
    idx, dist = [], []
    for i in range(0, len(T), block):
        d2 = (sq[i:i + block, None] + sq[None, :] - 2 * T[i:i + block] @ T.T).clamp_min(0)
        rows = torch.arange(i, min(i + block, len(T)))
        d2[rows - i, rows] = -1.0  # the point itself comes first
        v, j = torch.topk(d2, k, dim=1, largest=False)
        idx.append(j)
        dist.append(v.clamp_min(0).sqrt())
    return torch.cat(idx).numpy().astype(np.int64), torch.cat(dist).numpy().astype(np.float32)


@torch.no_grad()
def features(model: nn.Module, X: torch.Tensor) -> np.ndarray:
    model.eval()
    return model.features(X).flatten(1).double().cpu().numpy()


def embed(models: dict[str, nn.Module], data: ProbeData, names: list[str] | None = None, n_retain: int = 200,
          n_test: int | None = 200, seed: int = 0, n_neighbors: int = 15, min_dist: float = 0.1, n_epochs: int = 200,
          cache: bool = True, root: str | Path | None = None) -> Embedding:
    """One shared UMAP of the penultimate features of D_f, a D_r sample and D_t under each named model
    (default: θ_o, θ_r and every other model). Each model's features are centred and divided by their mean
    standard deviation (over the samples shown) before the shared fit, so no model's scale dominates."""
    start = time.perf_counter()
    names = names or list(models)
    rng = np.random.default_rng(seed)
    (fX, fy), (rX, ry), (tX, ty) = data.forget, data.retain_sample, data.test
    r_take = np.sort(rng.choice(len(ry), size=min(n_retain, len(ry)), replace=False))
    t_take = np.arange(len(ty)) if n_test is None else np.sort(rng.choice(len(ty), min(n_test, len(ty)), replace=False))
    rt = torch.as_tensor(r_take, device=rX.device)
    tt = torch.as_tensor(t_take, device=tX.device)
    X = torch.cat([fX, rX[rt], tX[tt]])
    y = torch.cat([fy, ry[rt], ty[tt]]).cpu().numpy()
    part = ["forget"] * len(fy) + ["retain"] * len(r_take) + ["test"] * len(t_take)
    ids = np.concatenate([
        data.forget_ids if data.forget_ids is not None else -np.ones(len(fy), dtype=np.int64),
        data.retain_sample_ids[r_take] if data.retain_sample_ids is not None else -np.ones(len(r_take), dtype=np.int64),
        data.test_ids[t_take] if data.test_ids is not None else -np.ones(len(t_take), dtype=np.int64)])
    feats = []
    for n in names:
        f = features(models[n], X)
        f = (f - f.mean(0)) / (f.std(0).mean() + 1e-8)  # one scale per model, shape of the cloud kept
        feats.append(f)
    allf = np.concatenate(feats).astype(np.float32)
    coords, key, hit = project(allf, seed, n_neighbors, min_dist, n_epochs, cache, root)
    m = len(y)
    out = {n: coords[i * m:(i + 1) * m].tolist() for i, n in enumerate(names)}
    return Embedding(names, out, part, y.astype(int).tolist(), ids.astype(int).tolist(), key,
                     time.perf_counter() - start, hit,
                     {"seed": seed, "n_neighbors": n_neighbors, "min_dist": min_dist, "n_epochs": n_epochs,
                      "n_forget": int(len(fy)), "n_retain": int(len(r_take)), "n_test": int(len(t_take)),
                      "layer": "penultimate", "scaling": "per model: centred, divided by mean feature std"})
