"""Pools of models for the competition's forgetting quality, trained and scored on one experiment.

    from core.quality import quality
    report = quality(exp, n=32)                  # the experiment's methods, protocol A
    report.methods["ssd"].score.f, report.ceiling.f, report.floor.f
    exp.results.sections["quality"] = report.to_dict()

Pools of N models each, all cached in the experiment's model store (shared by methods, runs and sessions):

* the retrain pool: N retrains on D_r, initialisation and data order seed + RETRAIN_OFFSET + i;
* the ceiling: a second, independent pool of N retrains (seeds + CEILING_OFFSET + i) scored against the first
  — what exact unlearning scores at this N (well below 1 at small N: the ceiling grows with N);
* the floor: θ_o's seeds — N originals on D_train, seeds seed + i (θ_o itself is i = 0) — against the retrains;
* per method, N unlearning runs with run seeds seed + i (run 0 is the experiment's own θ_u), each cached like
  `Experiment.unlearn` with its seed in the key. Protocol A (as the competition ran it): every run starts from
  the one θ_o. Protocol B: run i starts from θ_o of seed i (the floor's originals). The exact method `retrain`
  is trained batched like the scratch pools (θ_o's initialisation under A, seed i's under B; data order
  seed + i), so it never shares a model with the retrain pool it is scored against.

The seeds of the three scratch pools never meet (retrain pools sit a million seeds away), so each comparison
sets independent models against each other; pools of any N share their first models through the cache.
A run that fails (raises, diverges, or gives NaN confidences) is excluded and counted in its pool's `failed`
lines; the method is then scored against as many retrains as it has runs, and says it is not at the run's N.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from .. import metrics
from ..cache import index_fingerprint, source_fingerprint, stable_hash
from ..config import MethodConfig
from ..errors import Cancelled, ResidueError
from ..progress import Progress, as_progress
from ..unlearn import get_method, methods as method_registry
from .score import MIN_MODELS, Score, check_halves, forgetting_quality, logit_scaled_confidence

RETRAIN_OFFSET = 1_000_000  # retrain pool: init = order = seed + RETRAIN_OFFSET + i
CEILING_OFFSET = 2_000_000  # the ceiling's second, independent retrain pool
MAX_N = 1024
PROTOCOLS = {
    "A": "one θ_o; the N unlearning runs start from it and differ only in their seed (as the competition ran it)",
    "B": "run i starts from θ_o of seed i (N originals), so the runs also differ in the original they unlearn",
}
PROTOCOL_NOTE = (
    "Under A every run starts from the same θ_o, so a method with little randomness of its own gives a narrow "
    "pool: SSD's only randomness is the mini-batch order of its two importance passes, and a method with none "
    "at all would give N identical models, a point mass that the scorer's rule for a pool whose range is under 1% "
    "of the other's marks ε = cap on every example (F = 0), however close the point lies to the retrains. Under "
    "B run i starts from θ_o of seed i, so every method carries the originals' seed spread and is compared "
    "distribution to distribution. Each pool's median per-example range of confidences (`median_range`) shows "
    "how narrow it is.")
_CODE = Path(__file__).resolve().parents[1]  # core/: a stored pool or report computed by other code is never served


@dataclass
class Pool:
    """One pool's outputs on the experiment's data — what scoring needs — and the runs it had to leave out."""

    label: str
    seeds: list[int]  # run seed of each kept model, in row order
    conf: np.ndarray  # (n, E) logit-scaled confidence of the true label, forget examples in split order
    forget_acc: np.ndarray  # (n,)
    retain_acc: np.ndarray
    test_acc: np.ndarray
    failed: list[str] = field(default_factory=list)  # one line per excluded run
    seconds: float = 0.0  # training / unlearning time of its models (as first built)
    cached: int = 0  # models that came from the model store
    errors: int = 0  # runs that raised (among `failed`): such a pool is not stored, so they are retried

    @property
    def n(self) -> int:
        return len(self.conf)

    @property
    def median_range(self) -> float | None:
        """Median over forget examples of the spread (max − min) of the pool's confidences: how narrow it is."""
        return float(np.median(self.conf.max(0) - self.conf.min(0))) if self.n else None

    def head(self, k: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        return self.conf[:k], {"retain": self.retain_acc[:k], "test": self.test_acc[:k]}

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "n": self.n, "seeds": list(self.seeds), "failed": list(self.failed),
                "forget_acc": self.forget_acc.tolist(), "retain_acc": self.retain_acc.tolist(),
                "test_acc": self.test_acc.tolist(), "median_range": self.median_range,
                "mean_forget_acc": _mean(self.forget_acc),
                "mean_retain_acc": _mean(self.retain_acc), "mean_test_acc": _mean(self.test_acc),
                "seconds": self.seconds, "cached": self.cached}


def _mean(a: np.ndarray) -> float | None:
    return float(a.mean()) if len(a) else None


@dataclass
class MethodQuality:
    key: str  # the model's name in the experiment (label or method name)
    method: str
    params: dict[str, Any]
    pool: Pool
    score: Score | None  # None when fewer than 4 runs succeeded
    note: str = ""  # why it is not scored, or not at the run's N

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "method": self.method, "params": self.params, "note": self.note,
                "score": None if self.score is None else self.score.to_dict(), "pool": self.pool.to_dict()}


@dataclass
class QualityReport:
    """Each method's forgetting quality between its two anchors, at one N and one protocol."""

    n: int  # models per pool: F is only comparable at equal N
    protocol: str  # "A" | "B"
    seed: int
    forget_indices: np.ndarray  # dataset index of each forget example, the order of every score's epsilons
    methods: dict[str, MethodQuality]
    ceiling: Score | None  # second retrain pool vs the retrain pool
    floor: Score | None  # θ_o's seeds vs the retrain pool
    pools: dict[str, Pool]  # "retrain", "ceiling", "originals"
    halves: int = 8
    seconds: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        from ..results import _clean

        def anchor(s: Score | None) -> dict | None:
            return None if s is None else s.to_dict()

        return _clean({
            "n": self.n, "protocol": self.protocol, "protocol_description": PROTOCOLS[self.protocol],
            "protocol_note": PROTOCOL_NOTE, "seed": self.seed, "halves": self.halves,
            "forget_indices": self.forget_indices.tolist(),
            "methods": {k: v.to_dict() for k, v in self.methods.items()},
            "ceiling": anchor(self.ceiling), "floor": anchor(self.floor),
            "pools": {k: v.to_dict() for k, v in self.pools.items()},
            "seeds": {"retrain": f"seed + {RETRAIN_OFFSET} + i", "ceiling": f"seed + {CEILING_OFFSET} + i",
                      "originals": "seed + i", "runs": "seed + i"},
            "seconds": self.seconds, "notes": self.notes})

    def rows(self) -> list[dict[str, Any]]:
        """One row per pool compared with the retrains (ceiling, methods, floor): the numbers a person reads."""
        def row(name: str, score: Score | None, pool: Pool, note: str = "") -> dict[str, Any]:
            return {"model": name, "F": None if score is None else score.f, "±": None if score is None else score.f_se,
                    "final": None if score is None else score.final, "N": None if score is None else score.n,
                    "forget acc": _mean(pool.forget_acc), "failed": len(pool.failed), "note": note}

        return ([row("ceiling (retrains)", self.ceiling, self.pools["ceiling"])]
                + [row(k, m.score, m.pool, m.note) for k, m in self.methods.items()]
                + [row("floor (θ_o's seeds)", self.floor, self.pools["originals"])])


# -- inputs ----------------------------------------------------------------------------------------------
def check_n(n: Any) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise ResidueError(f"N must be a whole number of models per pool, got {n!r}.")
    if not MIN_MODELS <= int(n) <= MAX_N:
        raise ResidueError(f"N = {n} models per pool is out of range: the score needs at least {MIN_MODELS} "
                           f"(the competition used 512), and this engine trains at most {MAX_N}.")
    return int(n)


def check_protocol(protocol: Any) -> str:
    p = str(protocol).strip().upper()
    if p not in PROTOCOLS:
        raise ResidueError(f"Unknown protocol '{protocol}': 'A' (one θ_o, runs differ in their seed) or 'B' "
                           "(run i starts from θ_o of seed i).")
    return p


def check(exp, methods: Sequence[MethodConfig] | None, n: Any, protocol: Any,
          halves: Any) -> tuple[int, str, int, list[MethodConfig]]:
    """Everything `quality` would refuse, refused before anything trains (the data is loaded and split)."""
    n, protocol, halves = check_n(n), check_protocol(protocol), check_halves(halves)
    forget = exp.prepare().forget
    if len(forget) < 2:
        raise ResidueError("Forgetting quality needs a forget set of at least 2 examples (F is a mean over the "
                           f"forget set); this one has {len(forget)}.")
    chosen = list(exp.config.methods if methods is None else methods)
    for m in chosen:
        get_method(m.name, **m.params)  # an unknown method or a bad hyperparameter
    keys = [m.key for m in chosen]
    if len(set(keys)) != len(keys):
        raise ResidueError(f"Method names repeat ({', '.join(keys)}): give each a distinct label.")
    return n, protocol, halves, chosen


# -- pools -------------------------------------------------------------------------------------------------
def summarise(label: str, models: Sequence[torch.nn.Module], seeds: Sequence[int], split,
              failed: Sequence[str] = (), seconds: float = 0.0, cached: int = 0) -> Pool:
    """Each model's confidence on every forget example and its forget / retain / test accuracy; a model whose
    confidences are not finite (a diverged run) is moved to `failed`."""
    parts = [split.tensors(p) for p in ("forget", "retain", "test")]
    X = torch.cat([x for x, _ in parts])
    cuts = np.cumsum([len(y) for _, y in parts])[:-1]
    ys = [y.cpu().numpy() for _, y in parts]
    kept, conf, accs, failed = [], [], [], list(failed)
    for model, seed in zip(models, seeds):
        f, r, t = np.split(metrics.logits(model, X).float().cpu().numpy(), cuts)
        c = logit_scaled_confidence(f, ys[0])
        if not np.isfinite(c).all():
            failed.append(f"seed {seed}: NaN/inf confidences on {int((~np.isfinite(c)).sum())} forget examples "
                          "(a diverged run)")
            continue
        kept.append(int(seed))
        conf.append(c)
        accs.append([float((z.argmax(-1) == y).mean()) for z, y in zip((f, r, t), ys)])
    e = len(ys[0])
    a = np.asarray(accs, dtype=np.float64).reshape(-1, 3)
    return Pool(label, kept, np.asarray(conf, dtype=np.float64).reshape(-1, e), a[:, 0], a[:, 1], a[:, 2], failed,
                seconds, cached)


def _result_key(parts: dict) -> str:
    return stable_hash({**parts, "code": source_fingerprint(_CODE)})


def _stored(exp, parts: dict, build):
    """The result stored under `parts` (and this code's fingerprint), or build it and store it — unless it
    holds a run that raised (which may not happen again: it is retried next time)."""
    key = _result_key(parts)
    found = exp.store.load_result(key)
    if found is None:
        found = build()
        if not _has_errors(found):
            exp.store.save_result(key, found)
    return found


def _has_errors(obj: Any) -> bool:
    if isinstance(obj, Pool):
        return obj.errors > 0
    if isinstance(obj, QualityReport):
        return any(p.errors for p in obj.pools.values()) or any(m.pool.errors for m in obj.methods.values())
    return False


def _split_parts(exp) -> dict[str, Any]:
    split = exp.prepare()
    return {"base": exp._base_key(), "forget": index_fingerprint(split.forget)}


def _scratch_pools(exp, specs: dict[str, list[tuple[str, int, int]]], progress: Progress) -> dict[str, Pool]:
    """Pools of models trained from scratch, all missing ones trained at once (`scratch_models`, batched)."""
    from ..probes.measures import scratch_models

    split = exp.prepare()
    keys = {name: {"quality_pool": "scratch", **_split_parts(exp), "specs": [list(s) for s in spec]}
            for name, spec in specs.items()}
    out: dict[str, Pool] = {}
    for name in specs:
        found = exp.store.load_result(_result_key(keys[name]))
        if found is not None:
            out[name] = found
    todo = [name for name in specs if name not in out]
    if todo:
        flat = [s for name in todo for s in specs[name]]
        start = time.perf_counter()
        models = scratch_models(exp, flat, progress, "quality: retrain pools and θ_o's seeds")
        seconds = (time.perf_counter() - start) / len(flat)
        i = 0
        for name in todo:
            ms = models[i:i + len(specs[name])]
            i += len(ms)
            out[name] = summarise(name, ms, [init for _, init, _ in specs[name]], split, seconds=seconds * len(ms))
            exp.store.save_result(_result_key(keys[name]), out[name])
    return out


def _method_pool(exp, m: MethodConfig, runs: list[tuple[int, int]], progress: Progress) -> Pool:
    """N unlearning runs of one method, (original seed, run seed) each, cached like `Experiment.unlearn`."""
    method = get_method(m.name, **m.params)
    parts = {"quality_pool": "unlearned", **_split_parts(exp), "method": m.name, "hp": method.hp,
             "runs": [list(r) for r in runs]}

    def build() -> Pool:
        stage = f"quality: {m.key}"
        if method_registry.get(m.name).exact and not m.params:  # retrains: batched, like the scratch pools
            from ..probes.measures import scratch_models

            start = time.perf_counter()
            models = scratch_models(exp, [("retain", o, s) for o, s in runs], progress, stage)
            return summarise(m.key, models, [s for _, s in runs], exp.prepare(), seconds=time.perf_counter() - start)
        models, seeds, failed, seconds, hits, errors = [], [], [], 0.0, 0, 0
        for i, (o_seed, seed) in enumerate(runs):
            try:
                tr = exp.unlearn(m.name, m.params, progress.silent(), seed=seed, original_seed=o_seed)
            except Cancelled:
                raise
            except Exception as e:  # noqa: BLE001 - a run that fails is excluded and counted, never scored
                failed.append(f"seed {seed}: failed: {type(e).__name__}: {(str(e).splitlines() or [''])[0]}")
                errors += 1
            else:
                if tr.status != "ok":
                    failed.append(f"seed {seed}: {tr.status}: {tr.message}")
                else:
                    models.append(tr.model)
                    seeds.append(seed)
                seconds += tr.seconds
                hits += tr.cached
            progress(stage, i + 1, len(runs))
        pool = summarise(m.key, models, seeds, exp.prepare(), failed, seconds, hits)
        pool.errors = errors
        return pool

    return _stored(exp, parts, build)


def _compare(a: Pool, b: Pool, n: int, halves: int, seed: int) -> tuple[Score | None, str]:
    """`a` scored against the retrain pool `b`, at the largest N both pools reach."""
    k = min(a.n, b.n)
    kept = f"{a.label} kept {a.n} of {n} models" + ("" if b.n == n else f", {b.label} {b.n} of {n}")
    if k < MIN_MODELS:
        return None, f"not scored: {kept} (the others failed), and the score needs at least {MIN_MODELS}."
    u_conf, u_acc = a.head(k)
    r_conf, r_acc = b.head(k)
    note = "" if k == n else (f"scored at N = {k}: {kept}, the failed ones left out; not comparable with the "
                              f"anchors at N = {n}.")
    return forgetting_quality(u_conf, r_conf, u_acc, r_acc, halves, seed), note


def quality(exp, methods: Sequence[MethodConfig] | None = None, n: int = 32, protocol: str = "A",
            halves: int = 8, progress: Progress | None = None) -> QualityReport:
    """Forgetting quality of `methods` (default: the experiment's) on `exp`, with its ceiling and floor.

    Trains what the model store lacks — three scratch pools of N (batched) and N runs per method — and keeps
    the pools' outputs and the report in the store's result cache. `halves`: half-samples per error bar."""
    progress = as_progress(progress)
    n, protocol, halves, chosen = check(exp, methods, n, protocol, halves)
    split = exp.prepare()
    keys = [m.key for m in chosen]
    s = int(exp.config.seed)
    specs = {"retrain": [("retain", s + RETRAIN_OFFSET + i, s + RETRAIN_OFFSET + i) for i in range(n)],
             "ceiling": [("retain", s + CEILING_OFFSET + i, s + CEILING_OFFSET + i) for i in range(n)],
             "originals": [("train", s + i, s + i) for i in range(n)]}
    runs = [(s if protocol == "A" else s + i, s + i) for i in range(n)]
    settings = {"quality_report": [m.name for m in chosen], "hp": [get_method(m.name, **m.params).hp for m in chosen],
                "keys": keys, "n": n, "protocol": protocol, "halves": int(halves), **_split_parts(exp),
                "seed": s}

    def build() -> QualityReport:
        seconds: dict[str, float] = {}
        t = time.perf_counter()
        pools = _scratch_pools(exp, specs, progress)
        seconds["scratch pools"] = time.perf_counter() - t
        per_method = {}
        for m in chosen:
            t = time.perf_counter()
            pool = _method_pool(exp, m, runs, progress)
            seconds[f"runs: {m.key}"] = time.perf_counter() - t
            per_method[m.key] = (m, pool)
        t = time.perf_counter()
        retrain = pools["retrain"]
        ceiling, floor = _stored(exp, {"quality_anchors": specs, **_split_parts(exp), "halves": halves, "seed": s},
                                 lambda: tuple(_compare(pools[k], retrain, n, halves, s)[0]
                                               for k in ("ceiling", "originals")))  # shared by every report
        out = {}
        for i, (key, (m, pool)) in enumerate(per_method.items()):
            score, note = _compare(pool, retrain, n, halves, s)
            out[key] = MethodQuality(key, m.name, get_method(m.name, **m.params).hp, pool, score, note)
            progress("quality: scoring", i + 1, len(per_method))
        seconds["scoring"] = time.perf_counter() - t
        notes = [f"{name} pool: {len(p.failed)} of {n} models left out" for name, p in pools.items() if p.failed]
        return QualityReport(n, protocol, s, np.asarray(split.forget), out, ceiling, floor, pools, int(halves),
                             seconds, notes)

    return _stored(exp, settings, build)
