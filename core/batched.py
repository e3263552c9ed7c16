"""Many small models at once.

Shadow models (LiRA, the unlearning leak), the reminiscence attack's repeated fine-tunings, seed
ensembles and loss-landscape grids all evaluate or train *many parameter sets of one architecture*.
Looping over models wastes the CPU on Python overhead and tiny matmuls; here the parameter sets are
stacked along a leading model axis and run through `torch.func.functional_call` under `vmap`.

`train_many` reproduces `core.training.train` exactly (same initialisation, same mini-batch order,
same Adam/SGD arithmetic), so a batched shadow model equals the one trained alone (tests check it).

Batch norm: a stacked parameter set also holds each model's buffers (running mean and variance), so every
model evaluates with its own statistics and trains its own, updated in place under `vmap`. Batch statistics
count every row of a batch, so a model with batch norm never shares a call with rows that are only padding:
`train_many` runs the models whose mini-batches have the same size together, step by step.

Memory: on CUDA every function here works through the models in chunks that fit the device's free memory
(`core.device.memory_budget`); on the CPU there is no budget and nothing is chunked.
"""
from __future__ import annotations

import copy
import math
from collections import defaultdict
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, vmap

from .device import memory_budget
from .progress import Progress, as_progress
from .training import (AUGMENT_PADDING, Recipe, augment_draws, augment_generator, augmented, drops_single,
                       fit_to_data, has_batch_norm, steps_per_epoch, training_context)

Params = dict[str, torch.Tensor]  # name -> tensor with a leading model axis


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    """Parameters, then buffers (batch norm's running statistics): everything a forward pass reads."""
    return {**dict(model.named_parameters()), **dict(model.named_buffers())}


def stack(models: Sequence[nn.Module]) -> Params:
    """Stack the parameters and buffers of same-architecture models: name -> (M, *shape)."""
    states = [_state(m) for m in models]
    return {k: torch.stack([s[k].detach() for s in states]) for k in states[0]}


def repeat(model: nn.Module, m: int) -> Params:
    """M copies of one model's parameters and buffers."""
    return {k: v.detach().unsqueeze(0).repeat(m, *([1] * v.dim())) for k, v in _state(model).items()}


def buffers_of(template: nn.Module, params: Params) -> Params:
    """The stacked buffers inside a stacked set (name -> (M, *shape)); {} for a model without buffers."""
    return {k: params[k] for k, _ in template.named_buffers() if k in params}


def _check_buffers(template: nn.Module, params: Params) -> None:
    """Models with batch norm are evaluated with their own running statistics, never the template's."""
    missing = [k for k, _ in template.named_buffers() if k not in params]
    if missing and has_batch_norm(template):
        raise ValueError(f"stacked batch-norm models need their buffers (missing {missing[0]!r}): stack the "
                         f"models with core.batched.stack, or pass each model's buffers")


def unstack(params: Params, template: nn.Module) -> list[nn.Module]:
    """The stacked parameter sets as separate modules (copies of `template`)."""
    out = []
    for i in range(next(iter(params.values())).shape[0]):
        m = copy.deepcopy(template)
        m.load_state_dict({**m.state_dict(), **{k: v[i] for k, v in params.items()}})
        out.append(m.eval())
    return out


def select(params: Params, i: int) -> Params:
    return {k: v[i] for k, v in params.items()}


def _stateless(template: nn.Module, train: bool = False):
    """f(params, x) of a private copy of `template`, in eval mode (batch norm reads running statistics) or train
    mode (batch statistics; the running ones in `params` are updated in place). Buffers missing from `params`
    are the template's."""
    # a private copy: functional_call swaps the module's parameters while it runs, so a template that other
    # threads read (a live model, not a fresh one) would show them vmap's batched tensors
    template = copy.deepcopy(template).train(train)
    buffers = dict(template.named_buffers())

    def f(p: Params, x: torch.Tensor) -> torch.Tensor:
        return functional_call(template, {**buffers, **p}, (x,))

    return f


# -- fast path for plain MLPs ------------------------------------------------------------------
# A model that is only a chain Flatten -> Linear -> ReLU? -> ... -> Linear (core.models.mlp.MLP, or an
# nn.Sequential of those) is run with hand-written batched matmuls (baddbmm) and a hand-written backward:
# the same arithmetic as autograd, without vmap/functional_call dispatch or autograd bookkeeping, which
# cost as much as the maths for these small layers. Anything else takes the generic vmap path.

Chain = list[tuple[str, "str | None", bool]]  # (weight name, bias name or None, ReLU after)


def linear_chain(template: nn.Module) -> Chain | None:
    """The layers of a plain MLP (Flatten, then Linear layers each optionally followed by ReLU, ending in a
    Linear) as [(weight name, bias name, relu after)], or None if the model is anything else."""
    from .models.base import Classifier

    if type(template) is nn.Sequential:
        roots: list[tuple[str, nn.Module]] = [("", template)]
    elif isinstance(template, Classifier) and type(template).forward is Classifier.forward:
        roots = [(f"blocks.{k}", b) for k, b in template.blocks.items()]
    else:
        return None
    leaves: list[tuple[str, nn.Module]] = []

    def walk(prefix: str, m: nn.Module) -> bool:
        if type(m) is nn.Sequential:
            return all(walk(f"{prefix}.{k}" if prefix else k, c) for k, c in m.named_children())
        leaves.append((prefix, m))
        return True

    if not all(walk(p, m) for p, m in roots):
        return None
    if not leaves or type(leaves[0][1]) is not nn.Flatten:
        return None  # the hand-written path flattens the input first, as Flatten does
    chain: Chain = []
    for name, m in leaves:
        pre = f"{name}." if name else ""
        if type(m) is nn.Flatten:
            if chain or m.start_dim != 1 or m.end_dim != -1:
                return None
        elif type(m) is nn.Linear:
            chain.append((pre + "weight", pre + "bias" if m.bias is not None else None, False))
        elif type(m) is nn.ReLU:
            if not chain or chain[-1][2]:
                return None
            chain[-1] = (chain[-1][0], chain[-1][1], True)
        else:
            return None
    named = {k for k, _ in template.named_parameters()}
    used = {n for w, b, _ in chain for n in (w, b) if n is not None}
    if not chain or named != used or chain[-1][2] or list(template.buffers()):
        return None
    return chain


def _chain_forward(chain: Chain, p: Params, x: torch.Tensor, keep: list | None = None) -> torch.Tensor:
    """Logits (M, B, classes) for per-model inputs x (M, B, ...); `keep` collects each layer's input."""
    h = x.reshape(x.shape[0], x.shape[1], -1)
    for wn, bn, relu in chain:
        if keep is not None:
            keep.append(h)
        wt = p[wn].transpose(1, 2)
        h = torch.baddbmm(p[bn].unsqueeze(1), h, wt) if bn is not None else torch.bmm(h, wt)
        if relu:
            h = h.relu_()
    return h


def _chain_loss_grad(template: nn.Module, chain: Chain, label_smoothing: float = 0.0) -> Callable:
    spec = Flat(template)
    eps = float(label_smoothing)

    @torch.no_grad()
    def fn(flat: torch.Tensor, x: torch.Tensor, y: torch.Tensor, w: torch.Tensor, buffers: Params | None = None):
        p = spec.views(flat)  # a plain MLP has no buffers
        inputs: list[torch.Tensor] = []
        logits = _chain_forward(chain, p, x, inputs)
        logp = logits.log_softmax(-1)
        denom = w.sum(1).clamp_min(1e-12)
        picked = logp.gather(-1, y.unsqueeze(-1)).squeeze(-1)
        if eps:  # the target is (1 - eps) on the label and eps spread evenly over every class, as F.cross_entropy
            picked = (1 - eps) * picked + eps * logp.mean(-1)
        losses = -(picked * w).sum(1) / denom
        d = logp.exp_()  # softmax; d(mean CE)/d logits = (softmax - target) * w / sum(w)
        d.scatter_add_(-1, y.unsqueeze(-1), torch.full(y.shape + (1,), -(1 - eps), dtype=d.dtype, device=d.device))
        if eps:
            d.sub_(eps / d.shape[-1])
        d.mul_((w / denom.unsqueeze(1)).unsqueeze(-1))
        g = torch.empty_like(flat)
        gv = spec.views(g)
        for i in range(len(chain) - 1, -1, -1):
            wn, bn, _ = chain[i]
            h = inputs[i]
            gv[wn].copy_(torch.bmm(d.transpose(1, 2), h))
            if bn is not None:
                gv[bn].copy_(d.sum(1))
            if i > 0:
                d = torch.bmm(d, p[wn])
                if chain[i - 1][2]:  # ReLU backward (h is the ReLU's output); one kernel, as autograd does
                    d = torch.ops.aten.threshold_backward(d, h, 0)
        return g, losses

    return fn


def forward_many(template: nn.Module, params: Params, X: torch.Tensor, per_model_inputs: bool = False,
                 chunk: int = 4096) -> torch.Tensor:
    """Logits of every parameter set (eval mode): (M, N, classes). X is shared (N, ...) or per model (M, N, ...).

    A stacked set of batch-norm models must hold their buffers (`stack` does). Within a device memory budget the
    models go through in chunks (`models_per_call`)."""
    _check_buffers(template, params)
    M = next(iter(params.values())).shape[0]
    rows = min(chunk, X.shape[1] if per_model_inputs else X.shape[0])
    k = models_per_call(template, rows, training=False, device=X.device)
    if k < M:
        return torch.cat([_forward_many(template, {n: v[i:i + k] for n, v in params.items()},
                                        X[i:i + k] if per_model_inputs else X, per_model_inputs, chunk)
                          for i in range(0, M, k)])
    return _forward_many(template, params, X, per_model_inputs, chunk)


def _forward_many(template: nn.Module, params: Params, X: torch.Tensor, per_model_inputs: bool,
                  chunk: int) -> torch.Tensor:
    chain = linear_chain(template)
    if chain is not None:
        M = next(iter(params.values())).shape[0]
        with torch.no_grad():
            n = X.shape[1] if per_model_inputs else X.shape[0]
            parts = []
            for i in range(0, n, chunk):
                xi = X[:, i:i + chunk] if per_model_inputs else X[i:i + chunk].unsqueeze(0).expand(M, -1, *X.shape[1:])
                parts.append(_chain_forward(chain, params, xi))
        return torch.cat(parts, dim=1)
    f = vmap(_stateless(template), in_dims=(0, 0 if per_model_inputs else None))
    with torch.no_grad():
        n = X.shape[1] if per_model_inputs else X.shape[0]
        parts = [f(params, X[:, i:i + chunk] if per_model_inputs else X[i:i + chunk]) for i in range(0, n, chunk)]
    return torch.cat(parts, dim=1)


class Flat:
    """Stacked parameter sets as one (M, P) tensor plus the names and shapes to view it as a dict.

    One flat tensor makes the optimiser a handful of whole-tensor operations instead of a Python
    loop over parameters (the loop costs as much as the maths for small models)."""

    def __init__(self, template: nn.Module):
        self.names = [k for k, _ in template.named_parameters()]
        self.shapes = [tuple(v.shape) for _, v in template.named_parameters()]
        self.sizes = [int(np.prod(s)) for s in self.shapes]

    def flatten(self, params: Params) -> torch.Tensor:
        return torch.cat([params[k].reshape(params[k].shape[0], -1) for k in self.names], dim=1)

    def views(self, flat: torch.Tensor) -> Params:
        """Dict of views into a flat (P,) or (M, P) tensor (gradients flow back to `flat`)."""
        lead = flat.shape[:-1]
        out, o = {}, 0
        for k, shape, size in zip(self.names, self.shapes, self.sizes):
            out[k] = flat[..., o:o + size].reshape(*lead, *shape)
            o += size
        return out


def loss_grad_fn(template: nn.Module, label_smoothing: float = 0.0) -> Callable:
    """(flat (M, P), X (M,B,..), y (M,B), w (M,B)[, buffers]) -> (grad (M, P), losses (M,)): weighted mean CE per
    model (with the recipe's label smoothing), the model in train mode.

    Weights let models with shorter last batches share one call (padding rows get weight 0). Plain MLPs
    take a hand-written batched forward/backward (`linear_chain`), everything else vmap + autograd. A model with
    batch norm needs `buffers` (each model's running statistics, stacked; updated in place, as a train-mode
    forward updates them), and its batch statistics count every row: no padding rows for it."""
    chain = linear_chain(template)
    if chain is not None:
        return _chain_loss_grad(template, chain, label_smoothing)
    return _generic_loss_grad_fn(template, label_smoothing)


def _generic_loss_grad_fn(template: nn.Module, label_smoothing: float = 0.0) -> Callable:
    flat_spec = Flat(template)
    f = vmap(_stateless(template, train=True))
    norm = has_batch_norm(template)

    def fn(flat: torch.Tensor, x: torch.Tensor, y: torch.Tensor, w: torch.Tensor, buffers: Params | None = None):
        if norm and not buffers:
            raise ValueError("a batch-norm model trains with its own running statistics: pass each model's "
                             "buffers (core.batched.buffers_of)")
        # gradients w.r.t. each parameter view, concatenated: differentiating w.r.t. `flat` itself makes every
        # slice's backward zero-fill a full (M, P) tensor (about a third of the step time); same numbers
        leaves = {k: v.requires_grad_(True) for k, v in flat_spec.views(flat.detach()).items()}
        with torch.enable_grad(), training_context(x):
            logits = f({**leaves, **(buffers or {})}, x).float()
            ce = F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="none",
                                 label_smoothing=label_smoothing).view(y.shape)
            losses = (ce * w).sum(1) / w.sum(1).clamp_min(1e-12)
            grads = torch.autograd.grad(losses.sum(), list(leaves.values()))
        g = torch.cat([gi.reshape(gi.shape[0], -1) for gi in grads], dim=1)
        return g, losses.detach()

    return fn


class BatchedOptimizer:
    """Adam or SGD(momentum, optionally Nesterov) over a flat (M, P) parameter tensor, with a per-model learning
    rate (`lr`, (M, 1): a schedule sets it before each step) and an `active` mask (inactive models stay exactly
    unchanged, optimiser state included). The arithmetic follows `torch.optim.Adam` / `torch.optim.SGD`, so
    results match the one-model optimisers."""

    def __init__(self, flat: torch.Tensor, kind: str = "adam", lr: float | torch.Tensor = 1e-3,
                 momentum: float = 0.9, weight_decay: float = 0.0, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, nesterov: bool = False):
        self.kind, self.momentum, self.wd, self.betas, self.eps = kind, momentum, weight_decay, betas, eps
        self.nesterov = nesterov
        M = flat.shape[0]
        self.lr = torch.as_tensor(lr, dtype=flat.dtype).expand(M).clone().to(flat.device).view(M, 1)
        self.t = torch.zeros(M, 1, device=flat.device)
        self.m = torch.zeros_like(flat)
        self.v = torch.zeros_like(flat) if kind == "adam" else None

    @torch.no_grad()
    def step(self, flat: torch.Tensor, g: torch.Tensor, active: torch.Tensor | None = None) -> None:
        if self.kind == "adam":
            self._adam(flat, g, active)
            return
        if active is not None and not bool(active.all()):
            if not bool(active.any()):
                return
            rows = torch.nonzero(active.to(flat.device)).flatten()
            sub = copy.copy(self)
            sub.lr, sub.t, sub.m, sub._buf = self.lr[rows], self.t[rows], self.m[rows], None
            part = flat[rows]
            sub.step(part, g[rows])
            flat[rows], self.t[rows], self.m[rows] = part, sub.t, sub.m
            return
        if self.wd:
            g = g + self.wd * flat
        first = self.t == 0
        self.t += 1
        if self.momentum:
            self.m.mul_(self.momentum * (~first)).add_(g)  # first step: buffer = g, like torch.optim.SGD
            g = g.add(self.m, alpha=self.momentum) if self.nesterov else self.m
        # one reused scratch buffer: fresh (M, P) temporaries cost more (allocation, page faults) than the
        # arithmetic for many small models
        buf = getattr(self, "_buf", None)
        if buf is None or buf.shape != flat.shape or buf.dtype != flat.dtype or buf.device != flat.device:
            buf = self._buf = torch.empty_like(flat)
        flat.sub_(torch.mul(g, self.lr, out=buf))

    def _adam(self, flat: torch.Tensor, g: torch.Tensor, active: torch.Tensor | None) -> None:
        """Adam through `torch._fused_adam_`, the kernel behind `torch.optim.Adam(fused=True)`: one pass
        over memory instead of eight elementwise passes over (M, P) tensors, which cost as much as the
        forward and backward of many small models. One call per group of models that share a learning
        rate and step count; a group of neighbouring rows goes in as one 2-D view (faster than rows)."""
        rows = torch.arange(flat.shape[0]) if active is None else torch.nonzero(active.cpu()).flatten()
        if len(rows) == 0:
            return
        on = rows.to(self.t.device)
        self.t[on] += 1  # the caller counts steps, as torch.optim.Adam does
        groups: dict[tuple[float, float], list[int]] = defaultdict(list)
        for i, (lr, t) in zip(rows.tolist(), torch.cat([self.lr, self.t], 1)[on].tolist()):
            groups[(lr, t)].append(i)
        b1, b2 = self.betas
        for (lr, _), idx in groups.items():
            parts: list = [slice(idx[0], idx[-1] + 1)] if idx[-1] - idx[0] + 1 == len(idx) else idx
            steps = [self.t[idx[0], 0]] if isinstance(parts[0], slice) else [self.t[i, 0] for i in idx]
            torch._fused_adam_([flat[p] for p in parts], [g[p] for p in parts], [self.m[p] for p in parts],
                               [self.v[p] for p in parts], [], steps, lr=lr, beta1=b1, beta2=b2,
                               weight_decay=self.wd, eps=self.eps, amsgrad=False, maximize=False)


def train_many(
    template: nn.Module,
    init: Params,
    X: torch.Tensor,
    y: torch.Tensor,
    subsets: Sequence[np.ndarray],
    recipe: Recipe,
    order_seeds: Sequence[int],
    progress: Progress | None = None,
    stage: str = "shadow models",
) -> Params:
    """Train M models at once, model i on X[subsets[i]] from init[i] with data-order seed order_seeds[i].

    Equivalent to calling `core.training.train` on each (same batches, same augmentation draws, same optimiser
    arithmetic). Models are independent, so within a device memory budget they train in chunks, each whole."""
    progress = as_progress(progress)
    M = len(subsets)
    rows = min(recipe.batch_size, max(len(s) for s in subsets))
    k = models_per_call(template, rows, training=True, device=X.device)
    if k >= M:
        return _train_many(template, init, X, y, subsets, recipe, order_seeds, progress, stage)
    parts = [_train_many(template, {n: v[i:i + k] for n, v in init.items()}, X, y, subsets[i:i + k], recipe,
                         order_seeds[i:i + k], progress, f"{stage} ({i + 1}-{min(i + k, M)} of {M})")
             for i in range(0, M, k)]
    return {n: torch.cat([part[n] for part in parts]) for n in parts[0]}


def _train_many(template: nn.Module, init: Params, X: torch.Tensor, y: torch.Tensor, subsets: Sequence[np.ndarray],
                recipe: Recipe, order_seeds: Sequence[int], progress: Progress, stage: str) -> Params:
    M = len(subsets)
    spec = Flat(template)
    _check_buffers(template, init)
    init = fitted_to_data(template, init, X, subsets)
    flat = spec.flatten(init).detach().clone()
    bufs = {k: v.detach().clone() for k, v in buffers_of(template, init).items()}
    opt = BatchedOptimizer(flat, recipe.optimizer, recipe.lr, recipe.momentum, recipe.weight_decay,
                           nesterov=recipe.nesterov)
    step_fn = loss_grad_fn(template, recipe.label_smoothing)
    gens = [torch.Generator().manual_seed(int(s)) for s in order_seeds]
    augs = [augment_generator(recipe, s, X) for s in order_seeds]
    single = drops_single(template)
    subs = [torch.as_tensor(np.asarray(s), dtype=torch.long) for s in subsets]
    bs = recipe.batch_size
    dev = X.device
    longest = max(len(s) for s in subs)
    # a learning-rate schedule: each model's own step count over its own number of steps, as `train` counts them
    done = np.zeros(M, dtype=np.int64)
    totals = [recipe.epochs * steps_per_epoch(len(s), bs, single) for s in subs]

    def step(g: torch.Tensor, active: torch.Tensor) -> None:
        if recipe.schedule:  # (a constant rate counts nothing: the classroom's MLPs pay nothing for schedules)
            opt.lr.copy_(torch.tensor([[recipe.lr_at(int(d), t)] for d, t in zip(done, totals)], dtype=opt.lr.dtype))
            done[active.cpu().numpy()] += 1
        opt.step(flat, g, active)

    for epoch in range(recipe.epochs):
        perms = [s[torch.randperm(len(s), generator=g)] for s, g in zip(subs, gens)]
        if not bufs and not single and not (augs and augs[0] is not None):
            # the common case: the epoch's orders as one padded (M, longest) table, so each step is a column
            # slice (per-model Python work once an epoch, not once a step: it cost as much as the small models' maths)
            order, weight = torch.zeros(M, longest, dtype=torch.long), torch.zeros(M, longest)
            for i, p in enumerate(perms):
                order[i, :len(p)], weight[i, :len(p)] = p, 1.0
            order, weight = order.to(dev), weight.to(dev)
            for s in range(math.ceil(longest / bs)):
                idx, w = order[:, s * bs:(s + 1) * bs], weight[:, s * bs:(s + 1) * bs]
                g, _ = step_fn(flat, X[idx], y[idx], w)
                step(g, w.sum(1) > 0)
            progress(stage, epoch + 1, recipe.epochs)
            continue
        n_steps = max(math.ceil(len(p) / bs) for p in perms)
        for s in range(n_steps):
            chunks = [p[s * bs:(s + 1) * bs] for p in perms]
            if single:
                chunks = [c if len(c) >= 2 else c[:0] for c in chunks]
            if bufs:  # batch norm: models with equal batch sizes together, never padding rows
                g = torch.zeros_like(flat)
                for rows in _same_size(chunks):
                    r = torch.as_tensor(rows, device=dev)
                    idx = torch.stack([chunks[i] for i in rows]).to(dev)
                    own = {k: v[r] for k, v in bufs.items()}
                    g[r], _ = step_fn(flat[r], _inputs(X, idx, [chunks[i] for i in rows], [augs[i] for i in rows],
                                                       recipe), y[idx], torch.ones(idx.shape, device=dev), own)
                    for k, v in own.items():
                        bufs[k][r] = v
                step(g, torch.as_tensor([len(c) > 0 for c in chunks]))
                continue
            width = max(len(c) for c in chunks)
            idx = torch.zeros(M, width, dtype=torch.long)
            w = torch.zeros(M, width)
            for i, c in enumerate(chunks):
                idx[i, :len(c)] = c
                w[i, :len(c)] = 1.0
            idx, w = idx.to(dev), w.to(dev)
            g, _ = step_fn(flat, _inputs(X, idx, chunks, augs, recipe), y[idx], w)
            step(g, w.sum(1) > 0)
        progress(stage, epoch + 1, recipe.epochs)
    return {**{k: v.detach() for k, v in spec.views(flat).items()}, **bufs}


def fitted_to_data(template: nn.Module, init: Params, X: torch.Tensor, subsets: Sequence[np.ndarray]) -> Params:
    """Each model's initialisation from its own training subset (`core.training.fit_to_data`: airbench's
    whitening layer), as `train` fits a model alone; the stacked set itself for architectures without one."""
    if not callable(getattr(template, "fit_to_data", None)):
        return init
    model = copy.deepcopy(template)
    out = {k: v.detach().clone() for k, v in init.items()}
    for i, sub in enumerate(subsets):
        model.load_state_dict({**model.state_dict(), **select(out, i)})
        fit_to_data(model, X[torch.as_tensor(np.asarray(sub), dtype=torch.long, device=X.device)])
        for k, v in _state(model).items():
            out[k][i] = v.detach()
    return out


def _same_size(chunks: list[torch.Tensor]) -> list[list[int]]:
    """Indices of the models grouped by mini-batch size (empty batches left out), in order."""
    groups: dict[int, list[int]] = defaultdict(list)
    for i, c in enumerate(chunks):
        if len(c):
            groups[len(c)].append(i)
    return list(groups.values())


def _inputs(X: torch.Tensor, idx: torch.Tensor, chunks: list[torch.Tensor], augs: list, recipe: Recipe) -> torch.Tensor:
    """X[idx] (models, width, ...), each model's real rows augmented with its own draws (as `train` draws them)."""
    xb = X[idx]
    if augs and augs[0] is not None:
        pad, mode = AUGMENT_PADDING[recipe.augment]
        width = idx.shape[1]
        offsets = torch.zeros(len(chunks), width, 2, dtype=torch.long)
        flips = torch.zeros(len(chunks), width, dtype=torch.bool)
        for i, (c, g) in enumerate(zip(chunks, augs)):
            offsets[i, :len(c)], flips[i, :len(c)] = augment_draws(g, len(c), pad)
        xb = augmented(xb.flatten(0, 1), offsets.flatten(0, 1), flips.flatten(), pad, mode).view(xb.shape)
    return xb


def models_per_call(template: nn.Module, rows: int, training: bool, device: torch.device | str) -> int:
    """How many stacked copies of `template` one call may hold on `device`, each with `rows` inputs: the device's
    memory budget (`core.device.memory_budget`) over one model's estimated need (`model_bytes`). Without a budget
    (the CPU) there is no limit."""
    budget = memory_budget(device)
    if budget is None:
        return 2**31
    return max(1, int(budget // model_bytes(template, rows, training)))


def model_bytes(template: nn.Module, rows: int, training: bool) -> int:
    """Estimated bytes one model takes in a stacked call on `rows` inputs: its parameters (with gradient and two
    optimiser moments when training) and every layer's output for the rows (kept for the backward pass when
    training, three times over to cover the gradients). Measured on the meta device: nothing is computed."""
    state = _state(template)
    params = sum(v.numel() * v.element_size() for v in state.values())
    acts = activation_elements(template) * 4 * rows
    return int(params * (4 if training else 1) + acts * (3 if training else 1))


def activation_elements(template: nn.Module) -> int:
    """Elements of every leaf module's output for one input sample (on the meta device)."""
    shape = getattr(template, "input_shape", None)
    model = copy.deepcopy(template).to("meta").eval()
    first = next((m for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))), None)
    if shape is None:
        if isinstance(first, nn.Conv2d):
            raise ValueError("a convolutional template needs its input_shape to size a memory budget")
        shape = (first.in_features,) if first is not None else (1,)
    total = 0

    def count(_m, _i, out):
        nonlocal total
        if isinstance(out, torch.Tensor):
            total += out[0].numel()

    hooks = [m.register_forward_hook(count) for m in model.modules() if not list(m.children())]
    try:
        with torch.no_grad():
            model(torch.empty(1, *shape, device="meta"))
    finally:
        for h in hooks:
            h.remove()
    return total + math.prod(shape)


def init_many(make: Callable[[int], nn.Module], seeds: Sequence[int]) -> Params:
    """Stacked initial parameters of `make(seed)` for each seed."""
    return stack([make(int(s)) for s in seeds])


def mean_loss_many(template: nn.Module, params: Params, X: torch.Tensor, y: torch.Tensor,
                   chunk_models: int = 256) -> torch.Tensor:
    """Mean cross-entropy of every parameter set on (X, y): shape (M,). Chunked over models for memory."""
    M = next(iter(params.values())).shape[0]
    out = []
    for i in range(0, M, chunk_models):
        part = {k: v[i:i + chunk_models] for k, v in params.items()}
        logits = forward_many(template, part, X)
        out.append(F.cross_entropy(logits.flatten(0, 1), y.repeat(logits.shape[0]), reduction="none")
                   .view(logits.shape[0], -1).mean(1))
    return torch.cat(out)
