"""One experiment, one direction: config -> data -> models (cached) -> measurements -> Results.

    from core import load_config, Experiment
    exp = Experiment(load_config("examples/classroom.toml"))
    results = exp.run()          # exp.models holds original, retrain and each unlearned model
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from . import metrics
from .cache import ModelStore, bytes_fingerprint, data_fingerprint, index_fingerprint
from .config import ExperimentConfig
from .data import Dataset, Split, load_dataset, make_split
from .device import default_device
from .errors import ResidueError
from .models import build_model
from .progress import Progress, as_progress
from .results import ModelReport, Results
from .training import TRAINER_VERSION, train
from .unlearn import UnlearnTask, get_method, methods

ORIGINAL, RETRAINED = "original", "retrain"


_idx_hash = index_fingerprint  # the name core.probes.measures imports


@dataclass
class Trained:
    model: nn.Module
    seconds: float
    status: str = "ok"
    message: str = ""
    history: list | None = None
    cached: bool = False


class Experiment:
    """Holds the data split and every model of one config; `run()` fills them and measures."""

    original_init_known = True  # θ_o was trained here from `fresh_model()`, so θ_r shares its initialisation

    def __init__(self, config: ExperimentConfig, store: ModelStore | None = None,
                 device: torch.device | str | None = None, dataset: Dataset | None = None):
        self.config = config.validate()
        self.store = store or ModelStore()
        self.device = torch.device(device) if device is not None else default_device()
        self._dataset = dataset
        self.split: Split | None = None
        self.models: dict[str, nn.Module] = {}
        self.trained: dict[str, Trained] = {}
        self.results: Results | None = None

    # -- pieces, usable on their own -------------------------------------------------------
    def prepare(self) -> Split:
        if self.split is None:
            c = self.config
            ds = self._dataset or load_dataset(c.data.name, **c.data.options)
            self.split = make_split(ds, c.data.forget, c.data.test_fraction, c.data.shadow_fraction, c.seed,
                                    self.device)
        return self.split

    def fresh_model(self, seed: int | None = None) -> nn.Module:
        split = self.prepare()
        c = self.config
        return build_model(c.model.name, split.dataset.input_shape, split.dataset.n_classes,
                           seed=c.seed if seed is None else seed, **c.model.params).to(self.device)

    def _base_key(self) -> dict:
        split = self.prepare()
        c = self.config
        return {"data": data_fingerprint(split.dataset), "split": [_idx_hash(split.train), _idx_hash(split.test)],
                "model": c.model.name, "model_params": c.model.params, "recipe": c.recipe.to_dict(),
                "trainer": TRAINER_VERSION}

    def train_model(self, part: str, init_seed: int, order_seed: int, progress: Progress | None = None,
                    stage: str = "train") -> Trained:
        """A model trained from scratch on a part ('train' or 'retain'), cached on disk."""
        split = self.prepare()
        idx = getattr(split, part)
        parts = {**self._base_key(), "kind": "scratch", "on": _idx_hash(idx), "init": init_seed,
                 "order": order_seed}

        def build():
            model = self.fresh_model(init_seed)
            X, y = split.tensors(part)
            log = train(model, X, y, self.config.recipe, seed=order_seed, progress=progress, stage=stage)
            return model, {"seconds": log.seconds}

        model, meta, hit = self.store.get_or_build(parts, lambda: self.fresh_model(init_seed), build)
        return Trained(model.to(self.device).eval(), float(meta["seconds"]), cached=hit)

    def task(self, seed: int | None = None, init_seed: int | None = None) -> UnlearnTask:
        """What a method may use; `seed` drives its randomness and `init_seed` is the initialisation its
        `fresh_model` returns (both default to the config's seed: θ_o's)."""
        split = self.prepare()
        (fX, fy), (rX, ry) = split.tensors("forget"), split.tensors("retain")
        return UnlearnTask(fX, fy, rX, ry, split.dataset.n_classes, self.config.recipe,
                           lambda: self.fresh_model(init_seed), seed=self.config.seed if seed is None else int(seed))

    def unlearn(self, method_name: str, params: dict, progress: Progress | None = None, seed: int | None = None,
                original_seed: int | None = None) -> Trained:
        """θ_u for one method, cached under θ_o's key plus the method, its hyperparameters and the run's seed.

        `seed` (default: the config's) drives the method's randomness; `original_seed` picks the θ_o it starts
        from (default: the experiment's own; another seed's θ_o is trained, or found in the cache)."""
        split = self.prepare()
        method = get_method(method_name, **params)
        s = self.config.seed
        run_seed, o_seed = s if seed is None else int(seed), s if original_seed is None else int(original_seed)
        if o_seed == s and ORIGINAL in self.models:
            original = self.models[ORIGINAL]
        else:
            original = self.train_model("train", o_seed, o_seed, progress, "train original").model
        parts = {**self._base_key(), "kind": "unlearned", "original_seed": o_seed,
                 "forget": _idx_hash(split.forget), "method": method_name, "hp": method.hp, "seed": run_seed}

        def build():
            r = method.unlearn(original, self.task(run_seed, o_seed), progress)
            return r.model, {"seconds": r.seconds, "status": r.status, "message": r.message,
                             "history": r.history}

        model, meta, hit = self.store.get_or_build(parts, lambda: self.fresh_model(), build)
        return Trained(model.to(self.device).eval(), float(meta["seconds"]), meta.get("status", "ok"),
                       meta.get("message", ""), meta.get("history", []), hit)

    # -- the whole pipeline ----------------------------------------------------------------
    def reference_models(self, progress: Progress | None = None) -> None:
        """θ_o and θ_r (trained or from the cache), without any unlearning method."""
        progress = as_progress(progress)
        progress("data", 0, 1)
        self.prepare()
        progress("data", 1, 1)
        seed = self.config.seed
        if ORIGINAL not in self.models:
            self.trained[ORIGINAL] = self.train_model("train", seed, seed, progress, "train original")
            self.models[ORIGINAL] = self.trained[ORIGINAL].model
        if RETRAINED not in self.models:
            self.trained[RETRAINED] = self.train_model("retain", seed, seed, progress, "retrain")
            self.models[RETRAINED] = self.trained[RETRAINED].model

    def run(self, progress: Progress | None = None) -> Results:
        progress = as_progress(progress)
        start = time.perf_counter()
        c = self.config
        self.reference_models(progress)
        for m in c.methods:
            if methods.get(m.name).exact and not m.params:
                self.trained[m.key] = self.trained[RETRAINED]  # the same model: train it once
            else:
                self.trained[m.key] = self.unlearn(m.name, m.params, progress.scoped(m.key))
            self.models[m.key] = self.trained[m.key].model
        progress("measure", 0, 1)
        self.results = self.measure(time.perf_counter() - start)
        progress("measure", 1, 1)
        return self.results

    def measure(self, seconds: float = 0.0) -> Results:
        split = self.prepare()
        c = self.config
        data = {p: split.tensors(p) for p in ("forget", "retain", "test")}
        p_retrain = metrics.probs(self.models[RETRAINED], data["forget"][0])
        t_retrain = self.trained[RETRAINED].seconds
        reports = []
        method_of = {m.key: m for m in c.methods}
        for name, tr in self.trained.items():
            model = tr.model
            role = {ORIGINAL: "original", RETRAINED: "retrained"}.get(name, "unlearned")
            mc = method_of.get(name)
            p = metrics.probs(model, data["forget"][0])
            reports.append(ModelReport(
                name=name, role=role, method=mc.name if mc else name,
                params=get_method(mc.name, **mc.params).hp if mc else {},
                forget_acc=metrics.accuracy(model, *data["forget"]),
                retain_acc=metrics.accuracy(model, *data["retain"]),
                test_acc=metrics.accuracy(model, *data["test"]),
                forget_loss=metrics.mean_loss(model, *data["forget"]),
                seconds=tr.seconds,
                ratio_to_retrain=tr.seconds / t_retrain if role != "original" and t_retrain > 0 else None,
                kl_to_retrain=metrics.kl_divergence(p_retrain, p) if role != "retrained" else 0.0,
                js_to_retrain=metrics.js_divergence(p_retrain, p) if role != "retrained" else 0.0,
                status=tr.status, message=tr.message, cached=tr.cached, history=tr.history or [],
            ))
        warning = degenerate_original(self)
        for r in reports if warning else []:
            if r.role == "original":
                r.status, r.message = "degenerate", warning
        return Results(
            config=c.to_dict(), config_hash=c.hash(), split=split.summary(),
            forget_indices=split.forget.tolist(), forget_classes=split.forget_classes, models=reports,
            device=str(self.device), seconds=seconds, notes=list(self.store.notes),
            warnings=[warning] if warning else [],
        )


MAX_CHECKPOINT_FILE_BYTES = 2**31  # a file named on the command line (a full-width VGG-11-BN is 0.5 GB)


class CheckpointExperiment(Experiment):
    """An experiment whose original model θ_o is a checkpoint (a state dict of the config's architecture) instead
    of a trained one: the dashboard's upload and the command line's `--checkpoint` alike.

    θ_o's initialisation is unknown, so θ_r (trained here from `fresh_model()`) does not share it:
    `original_init_known` is False and measures read in θ_o's coordinates are not applicable (`core.verdict`).
    The checkpoint's hash enters every cache key, so models unlearned from it never mix with models unlearned
    from a trained θ_o."""

    original_init_known = False

    def __init__(self, config: ExperimentConfig, state: dict, fingerprint: str, **kw):
        super().__init__(config, **kw)
        self._state, self._ckpt_fp = state, fingerprint

    @classmethod
    def from_bytes(cls, config: ExperimentConfig, raw: bytes, max_bytes: int | None = None,
                   **kw) -> "CheckpointExperiment":
        """Parse `raw` against the config's architecture on its data (`core.models.load_checkpoint`: weights only,
        unwrapped, shape-checked), before anything trains."""
        from .models import load_checkpoint

        exp = cls(config, {}, bytes_fingerprint(raw), **kw)
        template = exp.fresh_model()
        exp._state = load_checkpoint(raw, template, **({} if max_bytes is None else {"max_bytes": max_bytes}))
        return exp

    @classmethod
    def from_file(cls, config: ExperimentConfig, path: str | Path, max_bytes: int = MAX_CHECKPOINT_FILE_BYTES,
                  **kw) -> "CheckpointExperiment":
        """`from_bytes` of a file named on the command line (a user's own path, read as it is)."""
        p = Path(path)
        if not p.is_file():
            raise ResidueError(f"checkpoint: file '{path}' not found.")
        if p.stat().st_size > max_bytes:
            raise ResidueError(f"checkpoint: '{p.name}' is over the {max_bytes // 2**20} MB limit.")
        try:
            raw = p.read_bytes()
        except OSError as e:
            raise ResidueError(f"checkpoint: cannot read '{path}' ({e.strerror or type(e).__name__}).") from None
        try:
            return cls.from_bytes(config, raw, max_bytes, **kw)
        except ResidueError as e:
            raise ResidueError(f"checkpoint '{p.name}': {e}") from None

    def _base_key(self) -> dict:
        return {**super()._base_key(), "checkpoint": self._ckpt_fp}

    def train_model(self, part, init_seed, order_seed, progress=None, stage="train"):
        if part == "train" and init_seed == order_seed == self.config.seed:
            model = self.fresh_model()
            model.load_state_dict(self._state)
            return Trained(model.to(self.device).eval(), 0.0, message="θ_o from a checkpoint", cached=True)
        return super().train_model(part, init_seed, order_seed, progress, stage)



def degenerate_original(exp: Experiment) -> str:
    """A warning line when θ_o is no better than always predicting the most frequent class, else ''.

    Such a θ_o learned nothing to unlearn: every verdict on it would be noise, so none is issued."""
    split = exp.prepare()
    model = exp.models[ORIGINAL]
    for part in ("train", "test"):
        X, y = split.tensors(part)
        if len(y) == 0:
            continue
        acc = metrics.accuracy(model, X, y)
        majority = float(np.bincount(y.cpu().numpy()).max() / len(y))
        if acc <= majority + max(0.01, 1.0 / len(y)):
            return (f"θ_o is no better than always predicting the most frequent class ({part} accuracy {acc:.0%}, "
                    f"the most frequent class alone {majority:.0%}): there is nothing to unlearn, so no verdict is "
                    f"issued. Check the data (scale the features) or the training recipe (learning rate, epochs).")
    return ""


def run(config: ExperimentConfig, progress: Progress | None = None, store: ModelStore | None = None) -> Results:
    """Run one experiment and return its results (the models stay inside an `Experiment`)."""
    return Experiment(config, store=store).run(progress)
