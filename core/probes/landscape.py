"""Loss landscape around θ_o, θ_u and θ_r (science.md §3, views.md "Loss-landscape slices").

* 1-D: forget and retain loss along the path θ_o → θ_u → θ_r, a little beyond each end;
  barrier heights on the straight lines between each pair.
* 2-D: the plane through θ_o, θ_u, θ_r (origin θ_o, orthonormalised basis from θ_u − θ_o and θ_r − θ_o,
  in parameter-space units so distances are true), with the three models' coordinates.
* 2-D: a filter-normalised random plane around θ_u (Li et al. 2018): each random direction is rescaled
  filter by filter (rows of a weight matrix, output channels of a conv) to the norm of θ_u's filter;
  biases get no component.

Every point of a grid is θ = centre + Σ_i c_i d_i. The first layer, affine in its parameters, is computed
once for the centre and each direction and combined per point (exact: z(θ_c + Σ c_i d_i) = z(θ_c) +
Σ c_i z(d_i) for a Linear/Conv layer); the rest of the network runs point by point with plain
F.linear/F.conv2d on all samples at once, which keeps each layer's activations in cache and its matmuls
large. Stacking points into batched matmuls (`vmap(functional_call)`, chunk by chunk) pays only where a
point's matmuls are too small to pay for their own dispatch (`BATCH_BELOW`, measured by
bench/landscape.py); `evaluate_loop` is the plain per-point reference the tests and the bench compare with.
Grids use D_f whole and a fixed class-stratified sample of D_r (`ProbeData.retain_sample`); the sizes
are recorded in each result. A model with batch norm is evaluated in eval mode with the running statistics of
the model the evaluator was built from at every point (the parameters move, the statistics do not), as loss
landscapes of batch-norm networks are usually drawn.
"""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, vmap

from ..batched import Flat, models_per_call
from ..results import _clean
from .common import ProbeData

Sets = dict[str, tuple[torch.Tensor, torch.Tensor]]

# Points are stacked into batched matmuls only when the network after its first layer has fewer parameters
# than this: then each point's matmuls are too small to pay for the dispatch of a pass of their own (about
# 0.1-0.3 ms a point), whatever the number of samples. Measured on 2 cores: MLP 2-64-64 (4,290 parameters
# after the first layer) batched is 1.1x faster at 1,000 samples and 2.6x at 50; MLP 64-256-256 (68,362) point
# by point is 1.3-3.4x faster from 50 to 1,000 samples. bench/landscape.py prints both choices per model.
BATCH_BELOW = 16_384


def flat_params(model: nn.Module) -> torch.Tensor:
    """All parameters of a model as one (P,) vector (order of `named_parameters`)."""
    return torch.cat([p.detach().reshape(-1) for _, p in model.named_parameters()])


class Evaluator:
    """Mean loss and accuracy of many parameter points θ = centre + coords @ dirs on named sets."""

    def __init__(self, template: nn.Module, sets: Sets, chunk: int = 16):
        # a private copy: functional_call swaps the module's parameters while it runs, and the model passed in
        # (θ_o, usually) is read by other threads at the same time (the dashboard's job and its pages)
        self.template = copy.deepcopy(template).eval()
        self.spec = Flat(template)
        self.names = list(sets)
        self.X = torch.cat([sets[n][0] for n in self.names])
        self.y = torch.cat([sets[n][1] for n in self.names])
        sizes = [len(sets[n][1]) for n in self.names]
        self.bounds = np.cumsum([0] + sizes).tolist()
        # points per call: at most `chunk`, fewer where the device's memory budget says so (CUDA)
        self.chunk = min(int(chunk), models_per_call(template, len(self.y), training=False, device=self.X.device))
        self.buffers = dict(template.named_buffers())
        self._plan = self._split_first_affine()

    # -- the first affine layer, computed once per direction ---------------------------------------
    def _split_first_affine(self):
        """(prefix modules, affine module, its param names, rest as (module, param prefix) list) or None."""
        blocks = getattr(self.template, "blocks", None)
        if blocks is None or self.buffers or "blocks" not in self.template._modules:
            return None  # the split needs parameter names `blocks.<layer>.…` (a view of blocks has others)
        names = list(blocks.keys())
        first = blocks[names[0]]
        mods = list(first) if isinstance(first, nn.Sequential) else [first]
        i = 0
        while i < len(mods) and isinstance(mods[i], nn.Flatten):
            i += 1
        if i >= len(mods) or not isinstance(mods[i], (nn.Linear, nn.Conv2d)):
            return None
        affine = mods[i]
        base = f"blocks.{names[0]}." + (f"{i}." if isinstance(first, nn.Sequential) else "")
        pnames = [base + n for n, _ in affine.named_parameters()]
        rest = [(m, None) for m in mods[i + 1:]]
        rest += [(blocks[n], f"blocks.{n}.") for n in names[1:]]
        return mods[:i], affine, pnames, rest

    def _affine(self, prefix, affine, params: dict[str, torch.Tensor], pnames, X) -> torch.Tensor:
        h = X
        for m in prefix:
            h = m(h)
        w = params[pnames[0]]
        b = params[pnames[1]] if len(pnames) > 1 else None
        if isinstance(affine, nn.Linear):
            return F.linear(h, w, b)
        return F.conv2d(h, w, b, affine.stride, affine.padding, affine.dilation, affine.groups)

    def _leaves(self, rest) -> list[nn.Module] | None:
        """The modules after the first affine layer, in the order they run, if each is a Linear, a Conv2d or
        free of parameters (then the per-point pass runs them directly); None for anything else."""
        leaves: list[nn.Module] = []

        def walk(m: nn.Module) -> None:
            if type(m) is nn.Sequential:
                for c in m:
                    walk(c)
            else:
                leaves.append(m)

        for m, _ in rest:
            walk(m)
        ok = all(type(m) in (nn.Linear, nn.Conv2d) or not list(m.parameters()) for m in leaves)
        return leaves if ok else None

    def batches(self) -> bool:
        """Whether `evaluate` stacks points into batched matmuls (small work per point) or runs them one by one."""
        plan = self._plan
        leaves = None if plan is None else self._leaves(plan[3])
        if leaves is None:
            return True
        first = sum(p.numel() for p in plan[1].parameters())
        later = [tuple(p.shape) for m in leaves for p in m.parameters()]
        if later != [sh for n, sh in zip(self.spec.names, self.spec.shapes) if n not in plan[2]]:
            return True  # parameters not registered in the order they run: leave it to functional_call
        return sum(self.spec.sizes) - first < BATCH_BELOW

    @torch.no_grad()
    def evaluate(self, center: torch.Tensor, dirs: torch.Tensor, coords: torch.Tensor) -> dict[str, np.ndarray]:
        """{set: (M,) mean loss, set_acc: (M,) accuracy} for every row of coords (M, k)."""
        center = center.to(self.X.device, torch.float32)
        dirs = dirs.to(self.X.device, torch.float32).reshape(-1, center.numel())
        coords = torch.as_tensor(coords, dtype=torch.float32, device=self.X.device).reshape(-1, dirs.shape[0])
        M = coords.shape[0]
        ce = torch.empty(M, len(self.y))
        correct = torch.empty(M, len(self.y), dtype=torch.bool)
        plan = self._plan
        if plan is not None:
            prefix, affine, pnames, rest = plan
            one = lambda v: self.spec.views(v)  # noqa: E731
            z_c = self._affine(prefix, affine, one(center), pnames, self.X)
            z_d = torch.stack([self._affine(prefix, affine, one(d), pnames, self.X) for d in dirs])  # (k, N, ...)
            # only the parameters after the first layer vary per point
            names, shapes, index, o = [], [], [], 0
            for n, shape, size in zip(self.spec.names, self.spec.shapes, self.spec.sizes):
                if n not in pnames:
                    names.append(n)
                    shapes.append(shape)
                    index.append(torch.arange(o, o + size))
                o += size
            index = torch.cat(index).to(center.device)
            c_rest, d_rest = center[index], dirs[:, index].contiguous()
            sizes = [int(np.prod(sh)) for sh in shapes]
            leaves = self._leaves(rest)
            if not self.batches():
                self._points(leaves, c_rest, d_rest, sizes, shapes, z_c, z_d, coords, ce, correct)
                return self._reduce(ce, correct)
            if leaves is not None and all(type(m) in (nn.Linear, nn.ReLU) for m in leaves):
                self._chunks(leaves, c_rest, d_rest, sizes, shapes, z_c, z_d, coords, ce, correct)
                return self._reduce(ce, correct)

            def tail(p: dict[str, torch.Tensor], z: torch.Tensor) -> torch.Tensor:
                h = z
                for m, pre in rest:
                    if pre is None:
                        h = m(h)
                    else:
                        h = functional_call(m, {k[len(pre):]: v for k, v in p.items() if k.startswith(pre)}, (h,))
                return h

            f = vmap(tail, in_dims=(0, 0))
        else:
            f = vmap(lambda p, x: functional_call(self.template, (p, self.buffers), (x,)), in_dims=(0, None))
        for s in range(0, M, self.chunk):
            c = coords[s:s + self.chunk]
            m = len(c)
            if plan is not None:
                flat = torch.addmm(c_rest, c, d_rest)  # (m, P_rest)
                params = {n: v.reshape(m, *sh) for n, v, sh in zip(names, flat.split(sizes, dim=1), shapes)}
                z = torch.addmm(z_c.reshape(-1), c, z_d.reshape(len(dirs), -1)).view(m, *z_c.shape)
                logits = f(params, z)
            else:
                logits = f(self.spec.views(torch.addmm(center, c, dirs)), self.X)
            lse = torch.logsumexp(logits, -1)
            ce[s:s + m] = lse - logits.gather(2, self.y.view(1, -1, 1).expand(m, -1, 1)).squeeze(2)
            correct[s:s + m] = logits.argmax(-1) == self.y
        return self._reduce(ce, correct)

    def _points(self, leaves, c_rest, d_rest, sizes, shapes, z_c, z_d, coords, ce, correct) -> None:
        """One point at a time: its parameters after the first layer (c_rest + c @ d_rest), its first-layer
        output (z_c + c @ z_d), then the remaining layers on every sample at once; fills ce and correct."""
        zc, zd = z_c.reshape(1, -1), z_d.reshape(len(z_d), -1)
        for i in range(len(coords)):
            c = coords[i:i + 1]
            flat = torch.addmm(c_rest.unsqueeze(0), c, d_rest).squeeze(0).split(sizes)
            h, j = torch.addmm(zc, c, zd).view(z_c.shape), 0
            for m in leaves:
                if type(m) is nn.Linear:
                    h = F.linear(h, flat[j].view(shapes[j]), flat[j + 1] if m.bias is not None else None)
                elif type(m) is nn.Conv2d:
                    h = F.conv2d(h, flat[j].view(shapes[j]), flat[j + 1] if m.bias is not None else None,
                                 m.stride, m.padding, m.dilation, m.groups)
                else:  # few kernels a point: every one costs a dispatch (and a thread wake-up)
                    h = h.relu_() if type(m) is nn.ReLU else m(h)
                    continue
                j += 1 + (m.bias is not None)
            ce[i] = F.cross_entropy(h, self.y, reduction="none")
            torch.eq(h.argmax(-1), self.y, out=correct[i])

    def _chunks(self, leaves, c_rest, d_rest, sizes, shapes, z_c, z_d, coords, ce, correct) -> None:
        """Points stacked `chunk` at a time through a Linear/ReLU tail with batched matmuls (baddbmm), without
        vmap and functional_call, whose dispatch costs more than these small matmuls; fills ce and correct."""
        zd = z_d.reshape(len(z_d), -1)
        for s in range(0, len(coords), self.chunk):
            c = coords[s:s + self.chunk]
            m = len(c)
            parts = torch.addmm(c_rest, c, d_rest).split(sizes, dim=1)  # (m, P_rest) in per-parameter pieces
            h, j = torch.addmm(z_c.reshape(1, -1), c, zd).view(m, *z_c.shape), 0
            for mod in leaves:
                if type(mod) is nn.ReLU:
                    h = h.relu_()
                    continue
                w = parts[j].view(m, *shapes[j]).transpose(1, 2)
                h = torch.baddbmm(parts[j + 1].unsqueeze(1), h, w) if mod.bias is not None else torch.bmm(h, w)
                j += 1 + (mod.bias is not None)
            lse = torch.logsumexp(h, -1)
            ce[s:s + m] = lse - h.gather(2, self.y.view(1, -1, 1).expand(m, -1, 1)).squeeze(2)
            correct[s:s + m] = h.argmax(-1) == self.y

    def _reduce(self, ce: torch.Tensor, correct: torch.Tensor) -> dict[str, np.ndarray]:
        out = {}
        for i, n in enumerate(self.names):
            a, b = self.bounds[i], self.bounds[i + 1]
            out[n] = ce[:, a:b].double().mean(1).numpy()
            out[f"{n}_acc"] = correct[:, a:b].double().mean(1).numpy()
        return out

    @torch.no_grad()
    def evaluate_loop(self, center: torch.Tensor, dirs: torch.Tensor, coords: torch.Tensor) -> dict[str, np.ndarray]:
        """The plain reference: one point at a time, each set through the whole model."""
        dirs = dirs.reshape(-1, center.numel()).float()
        coords = torch.as_tensor(coords, dtype=torch.float32).reshape(-1, dirs.shape[0])
        out: dict[str, list] = {}
        for c in coords:
            params = self.spec.views(center.float() + c @ dirs)
            for i, n in enumerate(self.names):
                a, b = self.bounds[i], self.bounds[i + 1]
                logits = functional_call(self.template, (params, self.buffers), (self.X[a:b],))
                out.setdefault(n, []).append(float(F.cross_entropy(logits.double(), self.y[a:b])))
                out.setdefault(f"{n}_acc", []).append(float((logits.argmax(-1) == self.y[a:b]).double().mean()))
        return {k: np.asarray(v) for k, v in out.items()}


def barrier(losses, t=None) -> float:
    """Height of the loss barrier on a straight line: max_t [L(t) − ((1−t)·L(0) + t·L(1))] over t in [0, 1]."""
    L = np.asarray(losses, dtype=float)
    t = np.linspace(0, 1, len(L)) if t is None else np.asarray(t, dtype=float)
    inside = (t >= -1e-9) & (t <= 1 + 1e-9)
    L0, L1 = np.interp(0.0, t, L), np.interp(1.0, t, L)
    return float(np.max(L[inside] - ((1 - t[inside]) * L0 + t[inside] * L1)))


# -- results ----------------------------------------------------------------------------------------
@dataclass
class Curve:
    """Loss and accuracy along the path θ_o → θ_u → θ_r: s = 0 at θ_o, 1 at θ_u, 2 at θ_r."""

    model: str
    s: list[float]
    forget_loss: list[float]
    retain_loss: list[float]
    forget_acc: list[float]
    retain_acc: list[float]
    marks: dict[str, float]
    barriers: dict[str, dict[str, float]]  # "original-unlearned" / "unlearned-retrain" / "original-retrain"
    n_forget: int = 0
    n_retain: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return _clean(self.__dict__)


@dataclass
class Plane:
    """A 2-D slice: loss[i][j] at (x[j], y[i]); `coords` places models on it (parameter-space units)."""

    kind: str  # "models" (plane through θ_o, θ_u, θ_r) or "random" (filter-normalised, around θ_u)
    model: str
    x: list[float]
    y: list[float]
    forget_loss: list[list[float]]
    retain_loss: list[list[float]]
    forget_acc: list[list[float]]
    retain_acc: list[list[float]]
    coords: dict[str, list[float]]
    model_losses: dict[str, dict[str, float]] = field(default_factory=dict)  # exact, at each model's coordinates
    n_forget: int = 0
    n_retain: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return _clean(self.__dict__)

    def at(self, name: str, which: str = "forget_loss") -> float:
        """Bilinear interpolation of a grid surface at a marked model's coordinates (`model_losses` holds
        the exact values, evaluated at the coordinates themselves)."""
        px, py = self.coords[name]
        Z = np.asarray(getattr(self, which))
        x, y = np.asarray(self.x), np.asarray(self.y)
        j = int(np.clip(np.searchsorted(x, px) - 1, 0, len(x) - 2))
        i = int(np.clip(np.searchsorted(y, py) - 1, 0, len(y) - 2))
        tx, ty = (px - x[j]) / (x[j + 1] - x[j]), (py - y[i]) / (y[i + 1] - y[i])
        return float((1 - ty) * ((1 - tx) * Z[i, j] + tx * Z[i, j + 1]) + ty * ((1 - tx) * Z[i + 1, j] + tx * Z[i + 1, j + 1]))


def _sets(data: ProbeData, full_retain: bool = False) -> Sets:
    return {"forget": data.forget, "retain": data.retain if full_retain else data.retain_sample}


def path_curve(original: nn.Module, unlearned: nn.Module, retrain: nn.Module, data: ProbeData, name: str = "unlearned",
               n: int = 21, beyond: float = 0.25, full_retain: bool = True, chunk: int = 16) -> Curve:
    """1-D curves along θ_o → θ_u → θ_r (n points per segment, `beyond` further past each end) and the
    barrier heights of the three straight lines (o-u and u-r from the path, o-r evaluated directly)."""
    start = time.perf_counter()
    ev = Evaluator(original, _sets(data, full_retain), chunk)
    o, u, r = flat_params(original), flat_params(unlearned), flat_params(retrain)
    n_out = max(1, int(round(beyond * (n - 1))))
    seg = np.linspace(0, 1, n)
    step = seg[1] - seg[0]
    s1 = np.concatenate([-step * np.arange(n_out, 0, -1), seg])  # o→u, starting before θ_o
    s2 = np.concatenate([seg[1:], 1 + step * np.arange(1, n_out + 1)])  # u→r, ending past θ_r
    s = np.concatenate([s1, 1 + s2])
    coords = np.concatenate([np.stack([s1, np.zeros_like(s1)], 1), np.stack([np.ones_like(s2), s2], 1)])
    dirs = torch.stack([u - o, r - u])
    res = ev.evaluate(o, dirs, torch.as_tensor(coords))
    t = seg
    res_or = ev.evaluate(o, (r - o)[None], torch.as_tensor(t[:, None]))  # the direct line o→r, for its barrier
    i_ou = (s >= 0) & (s <= 1)
    i_ur = (s >= 1) & (s <= 2)
    bar = {}
    for which in ("forget", "retain"):
        L = res[which]
        bar.setdefault("original-unlearned", {})[which] = barrier(L[i_ou], s[i_ou])
        bar.setdefault("unlearned-retrain", {})[which] = barrier(L[i_ur], s[i_ur] - 1)
        bar.setdefault("original-retrain", {})[which] = barrier(res_or[which], t)
    return Curve(name, s.tolist(), res["forget"].tolist(), res["retain"].tolist(), res["forget_acc"].tolist(),
                 res["retain_acc"].tolist(), {"original": 0.0, name: 1.0, "retrain": 2.0}, bar,
                 len(ev.y[ev.bounds[0]:ev.bounds[1]]), ev.bounds[2] - ev.bounds[1], time.perf_counter() - start)


def line_barriers(a: nn.Module, b: nn.Module, data: ProbeData, n: int = 11, chunk: int = 16,
                  evaluator: Evaluator | None = None) -> dict[str, float]:
    """Forget and retain loss barrier on the straight line a → b (n points)."""
    ev = evaluator or Evaluator(a, _sets(data), chunk)
    fa, fb = flat_params(a), flat_params(b)
    t = np.linspace(0, 1, n)
    res = ev.evaluate(fa, (fb - fa)[None], torch.as_tensor(t[:, None]))
    return {w: barrier(res[w], t) for w in ("forget", "retain")}


def _orthonormal(v1: torch.Tensor, v2: torch.Tensor, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """Gram-Schmidt in float64; a (near-)zero or colinear vector is replaced by a random orthogonal one."""
    notes = []
    v1, v2 = v1.double(), v2.double()
    scale = max(float(v1.norm()), float(v2.norm()), 1e-12)
    g = torch.Generator().manual_seed(seed)
    if float(v1.norm()) < 1e-9 * scale or float(v1.norm()) == 0.0:
        notes.append("θ_u coincides with θ_o: the first axis points from θ_o to θ_r instead.")
        v1, v2 = v2, torch.randn(v2.shape, generator=g, dtype=torch.float64)
    e1 = v1 / v1.norm()
    w = v2 - (v2 @ e1) * e1
    if float(w.norm()) < 1e-6 * float(v2.norm()) or float(w.norm()) == 0.0:
        notes.append("the three models are (nearly) on one line: the second axis is a random direction.")
        w = torch.randn(v1.shape, generator=g, dtype=torch.float64)
        w = w - (w @ e1) * e1
    e2 = w / w.norm()
    return e1, e2, notes


def _grid(lo: tuple[float, float], hi: tuple[float, float], n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x = np.linspace(lo[0], hi[0], n)
    y = np.linspace(lo[1], hi[1], n)
    XX, YY = np.meshgrid(x, y)  # rows follow y
    return x, y, np.stack([XX.ravel(), YY.ravel()], 1)


def _evaluate_grid(ev: Evaluator, center, dirs, pts, n, batched: bool) -> dict[str, list[list[float]]]:
    res = (ev.evaluate if batched else ev.evaluate_loop)(center, dirs, torch.as_tensor(pts))
    return {k: v.reshape(n, n).tolist() for k, v in res.items()}


def model_plane(original: nn.Module, unlearned: nn.Module, retrain: nn.Module, data: ProbeData,
                name: str = "unlearned", n: int = 31, margin: float = 0.25, batched: bool = True, chunk: int = 16,
                full_retain: bool = False, others: dict[str, nn.Module] | None = None) -> Plane:
    """Forget and retain loss on the plane through θ_o, θ_u, θ_r (origin θ_o). `others` are projected on it
    too (their distance off the plane is in `notes`)."""
    start = time.perf_counter()
    ev = Evaluator(original, _sets(data, full_retain), chunk)
    o, u, r = (flat_params(m).double() for m in (original, unlearned, retrain))
    e1, e2, notes = _orthonormal(u - o, r - o)
    pts = {"original": o, name: u, "retrain": r, **{k: flat_params(m).double() for k, m in (others or {}).items()}}
    coords = {k: [float((v - o) @ e1), float((v - o) @ e2)] for k, v in pts.items()}
    for k, v in pts.items():
        off = float((v - o - coords[k][0] * e1 - coords[k][1] * e2).norm())
        if off > 1e-4 * max(float((v - o).norm()), 1e-12):
            notes.append(f"{k} lies {off:.3g} off the plane (projected).")
    xs = [c[0] for c in coords.values()]
    ys = [c[1] for c in coords.values()]
    span = max(max(xs) - min(xs), max(ys) - min(ys), 1e-3)
    lo = (min(xs) - margin * span, min(ys) - margin * span)
    hi = (max(xs) + margin * span, max(ys) + margin * span)
    x, y, grid = _grid(lo, hi, n)
    basis = torch.stack([e1, e2]).float()
    z = _evaluate_grid(ev, o.float(), basis, grid, n, batched)
    return Plane("models", name, x.tolist(), y.tolist(), z["forget"], z["retain"], z["forget_acc"], z["retain_acc"],
                 coords, _at_coords(ev, o.float(), basis, coords), ev.bounds[1], ev.bounds[2] - ev.bounds[1],
                 time.perf_counter() - start, notes)


def _at_coords(ev: Evaluator, center, basis, coords: dict[str, list[float]]) -> dict[str, dict[str, float]]:
    names = list(coords)
    res = ev.evaluate(center, basis, torch.tensor([coords[k] for k in names], dtype=torch.float32))
    return {k: {w: float(res[w][i]) for w in ("forget", "retain", "forget_acc", "retain_acc")}
            for i, k in enumerate(names)}


def filter_normalised_direction(model: nn.Module, generator: torch.Generator) -> torch.Tensor:
    """A random direction with each filter scaled to the norm of the model's filter (Li et al. 2018);
    1-D parameters (biases) get zero."""
    parts = []
    for _, p in model.named_parameters():
        p = p.detach()
        if p.dim() <= 1:
            parts.append(torch.zeros(p.numel()))
            continue
        d = torch.randn(p.shape, generator=generator)
        dn = d.flatten(1).norm(dim=1).clamp_min(1e-12)
        pn = p.flatten(1).norm(dim=1)
        d = d * (pn / dn).view(-1, *[1] * (p.dim() - 1))
        parts.append(d.reshape(-1))
    return torch.cat(parts)


def random_plane(model: nn.Module, data: ProbeData, name: str = "unlearned", n: int = 31, radius: float = 1.0,
                 seed: int = 0, batched: bool = True, chunk: int = 16, full_retain: bool = False) -> Plane:
    """Forget and retain loss on a filter-normalised random plane centred on `model` (coords in [−radius, radius])."""
    start = time.perf_counter()
    ev = Evaluator(model, _sets(data, full_retain), chunk)
    g = torch.Generator().manual_seed(int(seed))
    d1 = filter_normalised_direction(model, g)
    d2 = filter_normalised_direction(model, g)
    x, y, grid = _grid((-radius, -radius), (radius, radius), n)
    center, basis = flat_params(model), torch.stack([d1, d2])
    z = _evaluate_grid(ev, center, basis, grid, n, batched)
    coords = {name: [0.0, 0.0]}
    return Plane("random", name, x.tolist(), y.tolist(), z["forget"], z["retain"], z["forget_acc"], z["retain_acc"],
                 coords, _at_coords(ev, center, basis, coords), ev.bounds[1], ev.bounds[2] - ev.bounds[1], time.perf_counter() - start,
                 ["filter-normalised random directions (Li et al. 2018); biases held fixed."])


@dataclass
class Landscape:
    """Everything the landscape view draws for one unlearned model."""

    model: str
    curve: Curve
    plane: Plane | None = None
    random: Plane | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "curve": self.curve.to_dict(),
                "plane": self.plane.to_dict() if self.plane else None,
                "random": self.random.to_dict() if self.random else None}


def landscape(original: nn.Module, unlearned: nn.Module, retrain: nn.Module, data: ProbeData, name: str = "unlearned",
              n_grid: int = 31, random: bool = True, seed: int = 0) -> Landscape:
    """1-D curves, the model plane and (optionally) the random plane around θ_u, for one method."""
    return Landscape(name, path_curve(original, unlearned, retrain, data, name),
                     model_plane(original, unlearned, retrain, data, name, n_grid),
                     random_plane(unlearned, data, name, n_grid, seed=seed) if random else None)
