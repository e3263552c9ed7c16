"""Residual knowledge under perturbation (RURK paper, "The Unseen Threat: Residual Knowledge in Machine
Unlearning under Perturbed Samples", 2026; its code is not public, this follows the paper's text).

For a forget sample x with label y, look at its neighbourhood x' = x + δ, ||δ|| <= τ: an unlearned model that
still recognises x' (predicts y) where the retrained model does not holds *residual knowledge* of x.

- random: δ = τ · u^(1/d) · g / ||g|| with g Gaussian, u uniform (a Gaussian direction scaled into the ball;
  uniform in the ball for L2), `n_random` draws per sample and radius, the same draws for every model;
- adversarial: PGD maximising log p(y | x + δ) within the ball (L2: normalised-gradient steps and projection
  onto the ball; Linf: signed steps and clipping), per model, from the clean point. The adversary keeps the
  best point it tried: a sample counts as recognised if any PGD iterate or any random draw at that radius is.

Per τ: the recognition rate of θ_o, θ_u and θ_r (random: over samples x draws; adversarial: over samples),
the ratio r_τ = rate(θ_u) / rate(θ_r) (> 1: residual knowledge; a zero denominator is floored at one count,
and flagged), and the share of samples (x draws) with θ_u right and θ_r wrong. Images are clipped to the data
range. All radii x samples x draws are one tensor; PGD runs for all radii at once.

Also: each model's decision regions on a grid around one sample of a 2-D dataset, and a few perturbed copies
of one image with each model's prediction (for the neighbourhood view).
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..data import display_pixels
from ..errors import ResidueError
from ..progress import Progress, as_progress

NORMS = ("l2", "linf")


@contextmanager
def torch_threads(n: int = 1):
    """Run a block with n intra-op threads (restored after). The attacks here are many tiny tensor operations:
    on a busy 2-core machine, OpenMP's thread team waiting on a descheduled thread makes each tiny op 10-20x
    slower with 2 threads than with 1 (measured), and with a free machine one thread is as fast for them."""
    old = torch.get_num_threads()
    if old == n:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


# -- perturbations ------------------------------------------------------------------------------------------
def _norm(d: torch.Tensor, norm: str) -> torch.Tensor:
    flat = d.flatten(1)
    return (flat.norm(dim=1) if norm == "l2" else flat.abs().amax(dim=1)).view(-1, *[1] * (d.dim() - 1))


def random_in_ball(shape: tuple[int, ...], radii: torch.Tensor, norm: str, generator: torch.Generator) -> torch.Tensor:
    """Random δ for each row: a Gaussian direction scaled into the ball of that row's radius (radii: (n,))."""
    g = torch.randn(shape, generator=generator)
    d = math.prod(shape[1:])
    u = torch.rand(shape[0], generator=generator) ** (1.0 / d)
    scale = (radii.cpu() * u).view(-1, *[1] * (len(shape) - 1))
    return g / _norm(g, norm).clamp_min(1e-12) * scale


def project(delta: torch.Tensor, radii: torch.Tensor, norm: str) -> torch.Tensor:
    r = radii.view(-1, *[1] * (delta.dim() - 1))
    if norm == "linf":
        return torch.maximum(torch.minimum(delta, r), -r)
    n = _norm(delta, norm)
    return delta * torch.where(n > r, r / n.clamp_min(1e-12), torch.ones_like(n))


def pgd(model: nn.Module, X: torch.Tensor, y: torch.Tensor, radii: torch.Tensor, norm: str, steps: int = 10,
        step_size: float = 2.5, bounds: tuple[float, float] | None = None) -> torch.Tensor:
    """Whether PGD finds a recognised point (argmax = y) within each row's ball: bool (n,).

    Maximises log p(y | x + δ); step = step_size · τ / steps; counts any iterate (the clean point included)."""
    model.eval()
    r = radii.to(X.device)
    alpha = (step_size * r / max(steps, 1)).view(-1, *[1] * (X.dim() - 1))
    delta = torch.zeros_like(X)

    def clipped(d):
        x = X + d
        return x.clamp(*bounds) if bounds is not None else x

    with torch.no_grad():
        found = model(clipped(delta)).argmax(-1) == y
    for _ in range(steps):
        delta.requires_grad_(True)
        with torch.enable_grad():
            logp = F.log_softmax(model(clipped(delta)), -1).gather(1, y[:, None]).sum()
            (g,) = torch.autograd.grad(logp, [delta])
        with torch.no_grad():
            if norm == "linf":
                step = g.sign()
            else:
                step = g / _norm(g, "l2").clamp_min(1e-12)
            delta = project(delta.detach() + alpha * step, r, norm)
            found |= model(clipped(delta)).argmax(-1) == y
    return found


# -- the sweep -----------------------------------------------------------------------------------------------
@dataclass
class ResidualSweep:
    """Recognition of perturbed forget samples vs radius, for one norm."""

    norm: str
    radii: list[float]
    models: list[str]  # e.g. ["original", "finetune", "retrain"]
    target: str  # the unlearned model (θ_u)
    reference: str  # the retrained model (θ_r)
    clean: dict[str, float]  # model -> accuracy on the clean forget samples
    random_rate: dict[str, list[float]]  # model -> per radius
    pgd_rate: dict[str, list[float]]
    r_random: list[float]  # rate(θ_u) / rate(θ_r) per radius (denominator floored at one count)
    r_pgd: list[float]
    r_random_floored: list[bool]  # True where θ_r recognised nothing and the floor was used
    r_pgd_floored: list[bool]
    u_not_r_random: list[float]  # share of (sample, draw) with θ_u right and θ_r wrong
    u_not_r_pgd: list[float]  # share of samples where PGD finds θ_u a recognised point and θ_r none
    sample_ids: list[int]
    per_sample_random: dict[str, list[list[float]]]  # model -> (radius, sample) share of draws recognised
    per_sample_pgd: dict[str, list[list[bool]]]  # model -> (radius, sample) recognised by the adversary
    n_random: int
    pgd_steps: int
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class ResidualReport:
    target: str
    sweeps: list[ResidualSweep]
    seconds: float
    notes: list[str] = field(default_factory=list)

    def sweep(self, norm: str) -> ResidualSweep:
        for s in self.sweeps:
            if s.norm == norm:
                return s
        raise KeyError(norm)

    def to_dict(self) -> dict:
        return {"target": self.target, "sweeps": [s.to_dict() for s in self.sweeps], "seconds": self.seconds,
                "notes": list(self.notes)}


def default_radii(X: torch.Tensor, norm: str, n: int = 8, max_radius: float | None = None) -> list[float]:
    """n radii from 0 to max_radius; by default a data-scaled range: Linf up to the mean per-feature standard
    deviation, L2 up to that times sqrt(dimensions) (about the distance to a typical neighbour)."""
    if max_radius is None or max_radius <= 0:
        std = float(X.flatten(1).std(0).mean())
        max_radius = std * (math.sqrt(X[0].numel()) if norm == "l2" else 1.0)
    return [float(v) for v in np.linspace(0.0, max_radius, n)]


def ratio(u: float, r: float, count: int) -> tuple[float, bool]:
    """r_τ = u / r with the denominator floored at one count out of `count` trials (flagged when used)."""
    floor = 1.0 / max(count, 1)
    return (u / r, False) if r > 0 else (u / floor, True)


def sweep(models: dict[str, nn.Module], X: torch.Tensor, y: torch.Tensor, radii: list[float], norm: str = "l2",
          *, target: str, reference: str = "retrain", n_random: int = 8, pgd_steps: int = 10,
          bounds: tuple[float, float] | None = None, seed: int = 0, sample_ids=None,
          progress: Progress | None = None) -> ResidualSweep:
    """Recognition rates of each model on random and PGD perturbations of (X, y) at every radius."""
    with torch_threads(1):
        return _sweep(models, X, y, radii, norm, target=target, reference=reference, n_random=n_random,
                      pgd_steps=pgd_steps, bounds=bounds, seed=seed, sample_ids=sample_ids, progress=progress)


def _sweep(models, X, y, radii, norm, *, target, reference, n_random, pgd_steps, bounds, seed, sample_ids,
           progress) -> ResidualSweep:
    if norm not in NORMS:
        raise ResidueError(f"Unknown norm '{norm}'. Known: {', '.join(NORMS)}.")
    if len(y) == 0:
        raise ResidueError("Residual knowledge needs at least one forget sample.")
    for m in (target, reference):
        if m not in models:
            raise ResidueError(f"Residual knowledge: no model named '{m}'; known: {sorted(models)}.")
    progress = as_progress(progress)
    start = time.perf_counter()
    R, N, D = len(radii), len(y), int(n_random)
    dev = X.device
    rad = torch.as_tensor(radii, dtype=X.dtype)
    gen = torch.Generator().manual_seed(int(seed))
    # random: one tensor (R, D, N, ...) of perturbed copies, the same for every model
    rows = rad.repeat_interleave(D * N)
    delta = random_in_ball((R * D * N, *X.shape[1:]), rows, norm, gen).to(dev)
    Xr = X.repeat(R * D, *[1] * (X.dim() - 1)) + delta
    if bounds is not None:
        Xr = Xr.clamp(*bounds)
    yr = y.repeat(R * D)
    names = list(models)
    rec_random, rec_pgd, clean = {}, {}, {}
    for i, n in enumerate(names):
        m = models[n].eval()
        with torch.no_grad():
            clean[n] = float((m(X).argmax(-1) == y).float().mean())
            hits = torch.cat([m(Xr[j:j + 16384]).argmax(-1) for j in range(0, len(yr), 16384)]) == yr
        rec_random[n] = hits.view(R, D, N).cpu()
        # adversarial, all radii at once; the adversary also keeps its random draws
        Xp = X.repeat(R, *[1] * (X.dim() - 1))
        found = pgd(m, Xp, y.repeat(R), rad.repeat_interleave(N).to(dev), norm, pgd_steps, bounds=bounds)
        rec_pgd[n] = found.view(R, N).cpu() | rec_random[n].any(1)
        progress("residual knowledge", i + 1, len(names))
    u, r = target, reference
    rr = {n: rec_random[n].float().mean((1, 2)).tolist() for n in names}
    pr = {n: rec_pgd[n].float().mean(1).tolist() for n in names}
    r_rand = [ratio(a, b, D * N) for a, b in zip(rr[u], rr[r])]
    r_pgd = [ratio(a, b, N) for a, b in zip(pr[u], pr[r])]
    return ResidualSweep(
        norm=norm, radii=[float(v) for v in radii], models=names, target=u, reference=r, clean=clean,
        random_rate=rr, pgd_rate=pr, r_random=[v for v, _ in r_rand], r_pgd=[v for v, _ in r_pgd],
        r_random_floored=[f for _, f in r_rand], r_pgd_floored=[f for _, f in r_pgd],
        u_not_r_random=(rec_random[u] & ~rec_random[r]).float().mean((1, 2)).tolist(),
        u_not_r_pgd=(rec_pgd[u] & ~rec_pgd[r]).float().mean(1).tolist(),
        sample_ids=[int(v) for v in (sample_ids if sample_ids is not None else range(N))],
        per_sample_random={n: rec_random[n].float().mean(1).tolist() for n in names},
        per_sample_pgd={n: rec_pgd[n].tolist() for n in names},
        n_random=D, pgd_steps=int(pgd_steps), seconds=time.perf_counter() - start)


def data_bounds(split) -> tuple[float, float] | None:
    """Valid input range to clip perturbed images to (None for tabular and 2-D data)."""
    ds = split.dataset
    if ds.kind != "image":
        return None
    return float(ds.X.min()), float(ds.X.max())


def residual_knowledge(ctx, target: str, *, norms: tuple[str, ...] = NORMS, n_radii: int = 8,
                       max_radius: dict[str, float] | float | None = None, n_random: int = 8, pgd_steps: int = 10,
                       seed: int = 0, reference: str = "retrain", progress: Progress | None = None) -> ResidualReport:
    """The RURK residual-knowledge sweep of one unlearned model against θ_o and θ_r on the forget set.

    ctx: a `core.attacks.AttackContext`. max_radius: per norm ({"l2": 3.0}) or one value for every norm;
    None = the data-scaled default (`default_radii`)."""
    if target not in ctx.models:
        raise ResidueError(f"No model named '{target}' in this experiment; known: {sorted(ctx.models)}.")
    if reference not in ctx.models:
        raise ResidueError(f"No reference model '{reference}' in this experiment; known: {sorted(ctx.models)}.")
    start = time.perf_counter()
    X, y = ctx.split.tensors("forget")
    names = list(dict.fromkeys(["original", target, reference]))
    models = {n: ctx.models[n] for n in names}
    bounds = data_bounds(ctx.split)
    Xtr, _ = ctx.split.tensors("train")
    sweeps = []
    for k, norm in enumerate(norms):
        mr = max_radius.get(norm) if isinstance(max_radius, dict) else max_radius
        radii = default_radii(Xtr, norm, n_radii, mr)
        sweeps.append(sweep(models, X, y, radii, norm, target=target, reference=reference, n_random=n_random,
                            pgd_steps=pgd_steps, bounds=bounds, seed=int(ctx.seed) * 7919 + seed + k,
                            sample_ids=ctx.split.forget, progress=progress))
    notes = []
    if target == reference:
        notes.append("The target is the reference itself: r_τ is 1 by construction.")
    return ResidualReport(target, sweeps, time.perf_counter() - start, notes)


# -- views of one sample's neighbourhood ---------------------------------------------------------------------
@dataclass
class DecisionRegions:
    """Each model's predicted class on a grid around one sample of a 2-D dataset."""

    xs: list[float]
    ys: list[float]
    predictions: dict[str, list[list[int]]]  # model -> (len(ys), len(xs)) predicted class
    confidence: dict[str, list[list[float]]]  # model -> probability of the sample's label on the grid
    center: list[float]
    label: int
    radius: float
    norm: str
    sample_id: int | None = None
    class_names: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def decision_regions(models: dict[str, nn.Module], x: torch.Tensor | np.ndarray, label: int, *, radius: float,
                     norm: str = "l2", extent: float = 3.0, resolution: int = 81, sample_id: int | None = None,
                     class_names: list[str] | None = None) -> DecisionRegions:
    """Predictions of each model on a resolution x resolution grid spanning ±extent·radius around x (2-D only)."""
    x = torch.as_tensor(x, dtype=torch.float32).flatten()
    if x.numel() != 2:
        raise ResidueError(f"Decision regions need 2-D inputs; this sample has {x.numel()} features.")
    half = max(float(extent) * float(radius), 1e-3)
    xs = np.linspace(float(x[0]) - half, float(x[0]) + half, int(resolution))
    ys = np.linspace(float(x[1]) - half, float(x[1]) + half, int(resolution))
    gx, gy = np.meshgrid(xs, ys)
    grid = torch.as_tensor(np.stack([gx.ravel(), gy.ravel()], 1), dtype=torch.float32)
    preds, conf = {}, {}
    for n, m in models.items():
        m.eval()
        dev = next(m.parameters()).device
        with torch.no_grad():
            p = torch.softmax(m(grid.to(dev)), -1).cpu()
        preds[n] = p.argmax(-1).view(len(ys), len(xs)).tolist()
        conf[n] = p[:, int(label)].view(len(ys), len(xs)).tolist()
    return DecisionRegions(xs.tolist(), ys.tolist(), preds, conf, x.tolist(), int(label), float(radius), norm,
                           sample_id, list(class_names or []))


@dataclass
class PerturbedExamples:
    """One sample and a few perturbed copies, with each model's prediction and confidence in the label."""

    images: list  # (n_copies + 1) arrays shaped like the input, as `pixels` drew them; index 0 is the clean sample
    kinds: list[str]  # "clean", "random", "pgd:<model>"
    predictions: dict[str, list[int]]  # model -> prediction per image
    confidence: dict[str, list[float]]  # model -> probability of the label per image
    label: int
    radius: float
    norm: str
    sample_id: int | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def perturbed_examples(models: dict[str, nn.Module], x: torch.Tensor, label: int, *, radius: float,
                       norm: str = "l2", n_random: int = 4, pgd_for: list[str] | None = None, pgd_steps: int = 10,
                       bounds: tuple[float, float] | None = None, seed: int = 0,
                       sample_id: int | None = None,
                       pixels: Callable[[torch.Tensor], np.ndarray] | None = None) -> PerturbedExamples:
    """The clean sample, `n_random` random copies within the τ-ball, and one PGD copy per model in `pgd_for`
    (the point PGD reached maximising that model's p(label)); every model's prediction on each.
    bounds: the valid input range to clip to (`data_bounds(split)` for images), None for no clipping.
    pixels: what to hand over of the copies, e.g. `display_pixels` with the dataset (the normalisation undone,
    for a person to look at); None: the model inputs themselves."""
    x = torch.as_tensor(x, dtype=torch.float32)
    dev = next(next(iter(models.values())).parameters()).device
    x = x.to(dev)
    gen = torch.Generator().manual_seed(int(seed))
    n = int(n_random)
    r = torch.full((n,), float(radius))
    copies = [x[None]]
    kinds = ["clean"]
    if n:
        rnd = x[None] + random_in_ball((n, *x.shape), r, norm, gen).to(dev)
        copies.append(rnd.clamp(*bounds) if bounds is not None else rnd)
        kinds += ["random"] * n
    for name in pgd_for or []:
        m = models[name].eval()
        rad = torch.tensor([float(radius)], device=dev)
        alpha = 2.5 * float(radius) / max(pgd_steps, 1)
        delta = torch.zeros_like(x[None])
        for _ in range(pgd_steps):
            delta.requires_grad_(True)
            with torch.enable_grad():
                xi = x[None] + delta
                xi = xi.clamp(*bounds) if bounds is not None else xi
                lp = F.log_softmax(m(xi), -1)[0, int(label)]
                (g,) = torch.autograd.grad(lp, [delta])
            with torch.no_grad():
                step = g.sign() if norm == "linf" else g / _norm(g, "l2").clamp_min(1e-12)
                delta = project(delta.detach() + alpha * step, rad, norm)
        xi = x[None] + delta
        copies.append((xi.clamp(*bounds) if bounds is not None else xi).detach())
        kinds.append(f"pgd:{name}")
    batch = torch.cat(copies)
    preds, conf = {}, {}
    for name, m in models.items():
        m.eval()
        with torch.no_grad():
            p = torch.softmax(m(batch), -1).cpu()
        preds[name] = p.argmax(-1).tolist()
        conf[name] = p[:, int(label)].tolist()
    shown = pixels(batch) if pixels is not None else batch.cpu().numpy()
    return PerturbedExamples([c.tolist() for c in shown], kinds, preds, conf, int(label),
                             float(radius), norm, sample_id)


def sample_neighbourhood(ctx, target: str, sample_id: int, *, radius: float | None = None, norm: str = "l2",
                         reference: str = "retrain", n_random: int = 4, seed: int = 0):
    """The neighbourhood view of one sample (a dataset index, usually a forget sample) for θ_o, θ_u, θ_r.

    2-D data: `DecisionRegions` on a grid of ±3τ around it; otherwise `PerturbedExamples` (the sample, n_random
    random copies and one PGD copy each for θ_u and θ_r). radius: None = the middle of the default sweep range."""
    split = ctx.split
    ds = split.dataset
    if not 0 <= int(sample_id) < len(ds):
        raise ResidueError(f"Sample {sample_id} is not in the dataset (0..{len(ds) - 1}).")
    for m in (target, reference):
        if m not in ctx.models:
            raise ResidueError(f"No model named '{m}' in this experiment; known: {sorted(ctx.models)}.")
    names = list(dict.fromkeys(["original", target, reference]))
    models = {n: ctx.models[n] for n in names}
    X, y = split.tensors(np.array([int(sample_id)]))
    if radius is None:
        Xtr, _ = split.tensors("train")
        radius = default_radii(Xtr, norm)[len(default_radii(Xtr, norm)) // 2]
    with torch_threads(1):
        if ds.kind == "2d" or X[0].numel() == 2:
            return decision_regions(models, X[0], int(y[0]), radius=radius, norm=norm, sample_id=int(sample_id),
                                    class_names=ds.class_names)
        return perturbed_examples(models, X[0], int(y[0]), radius=radius, norm=norm, n_random=n_random,
                                  pgd_for=list(dict.fromkeys([target, reference])), bounds=data_bounds(split),
                                  seed=seed, sample_id=int(sample_id),
                                  pixels=(lambda batch: display_pixels(ds, batch)) if ds.kind == "image" else None)
