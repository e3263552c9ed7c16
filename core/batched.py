"""Many small models at once.

Shadow models (LiRA, the unlearning leak), the reminiscence attack's repeated fine-tunings, seed
ensembles and loss-landscape grids all evaluate or train *many parameter sets of one architecture*.
Looping over models wastes the CPU on Python overhead and tiny matmuls; here the parameter sets are
stacked along a leading model axis and run through `torch.func.functional_call` under `vmap`.

`train_many` reproduces `core.training.train` exactly (same initialisation, same mini-batch order,
same Adam/SGD arithmetic), so a batched shadow model equals the one trained alone (tests check it).
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

from .progress import Progress, as_progress
from .training import Recipe

Params = dict[str, torch.Tensor]  # name -> tensor with a leading model axis


def stack(models: Sequence[nn.Module]) -> Params:
    """Stack the parameters of same-architecture models: name -> (M, *shape)."""
    return {k: torch.stack([dict(m.named_parameters())[k].detach() for m in models])
            for k, _ in models[0].named_parameters()}


def repeat(model: nn.Module, m: int) -> Params:
    """M copies of one model's parameters."""
    return {k: v.detach().unsqueeze(0).repeat(m, *([1] * v.dim())) for k, v in model.named_parameters()}


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


def _stateless(template: nn.Module):
    # a private copy: functional_call swaps the module's parameters while it runs, so a template that other
    # threads read (a live model, not a fresh one) would show them vmap's batched tensors
    template = copy.deepcopy(template)
    buffers = dict(template.named_buffers())

    def f(p: Params, x: torch.Tensor) -> torch.Tensor:
        return functional_call(template, (p, buffers), (x,))

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


def _chain_loss_grad(template: nn.Module, chain: Chain) -> Callable:
    spec = Flat(template)

    @torch.no_grad()
    def fn(flat: torch.Tensor, x: torch.Tensor, y: torch.Tensor, w: torch.Tensor):
        p = spec.views(flat)
        inputs: list[torch.Tensor] = []
        logits = _chain_forward(chain, p, x, inputs)
        logp = logits.log_softmax(-1)
        denom = w.sum(1).clamp_min(1e-12)
        losses = -(logp.gather(-1, y.unsqueeze(-1)).squeeze(-1) * w).sum(1) / denom
        d = logp.exp_()  # softmax; d(mean CE)/d logits = (softmax - onehot) * w / sum(w)
        d.scatter_add_(-1, y.unsqueeze(-1), torch.full(y.shape + (1,), -1.0, dtype=d.dtype, device=d.device))
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
    """Logits of every parameter set: (M, N, classes). X is shared (N, ...) or per model (M, N, ...)."""
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


def loss_grad_fn(template: nn.Module) -> Callable:
    """(flat (M, P), X (M,B,..), y (M,B), w (M,B)) -> (grad (M, P), losses (M,)): weighted mean CE per model.

    Weights let models with shorter last batches share one call (padding rows get weight 0). Plain MLPs
    take a hand-written batched forward/backward (`linear_chain`), everything else vmap + autograd."""
    chain = linear_chain(template)
    if chain is not None:
        return _chain_loss_grad(template, chain)
    return _generic_loss_grad_fn(template)


def _generic_loss_grad_fn(template: nn.Module) -> Callable:
    flat_spec = Flat(template)
    f = vmap(_stateless(template))

    def fn(flat: torch.Tensor, x: torch.Tensor, y: torch.Tensor, w: torch.Tensor):
        # gradients w.r.t. each parameter view, concatenated: differentiating w.r.t. `flat` itself makes every
        # slice's backward zero-fill a full (M, P) tensor (about a third of the step time); same numbers
        leaves = {k: v.requires_grad_(True) for k, v in flat_spec.views(flat.detach()).items()}
        with torch.enable_grad():
            logits = f(leaves, x)
            ce = F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="none").view(y.shape)
            losses = (ce * w).sum(1) / w.sum(1).clamp_min(1e-12)
            grads = torch.autograd.grad(losses.sum(), list(leaves.values()))
        g = torch.cat([gi.reshape(gi.shape[0], -1) for gi in grads], dim=1)
        return g, losses.detach()

    return fn


class BatchedOptimizer:
    """Adam or SGD(momentum) over a flat (M, P) parameter tensor, with a per-model learning rate and an
    `active` mask (inactive models stay exactly unchanged, optimiser state included). The arithmetic
    follows `torch.optim.Adam` / `torch.optim.SGD`, so results match the one-model optimisers."""

    def __init__(self, flat: torch.Tensor, kind: str = "adam", lr: float | torch.Tensor = 1e-3,
                 momentum: float = 0.9, weight_decay: float = 0.0, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8):
        self.kind, self.momentum, self.wd, self.betas, self.eps = kind, momentum, weight_decay, betas, eps
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
            sub = BatchedOptimizer.__new__(BatchedOptimizer)
            sub.kind, sub.momentum, sub.wd, sub.betas, sub.eps = self.kind, self.momentum, self.wd, self.betas, self.eps
            sub.lr, sub.t, sub.m = self.lr[rows], self.t[rows], self.m[rows]
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
            g = self.m
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

    Equivalent to calling `core.training.train` on each (same batches, same optimiser arithmetic)."""
    progress = as_progress(progress)
    M = len(subsets)
    spec = Flat(template)
    flat = spec.flatten(init).detach().clone()
    opt = BatchedOptimizer(flat, recipe.optimizer, recipe.lr, recipe.momentum, recipe.weight_decay)
    step_fn = loss_grad_fn(template)
    gens = [torch.Generator().manual_seed(int(s)) for s in order_seeds]
    subs = [torch.as_tensor(np.asarray(s), dtype=torch.long) for s in subsets]
    bs = recipe.batch_size
    dev = X.device
    longest = max(len(s) for s in subs)
    for epoch in range(recipe.epochs):
        # the epoch's orders as one padded (M, longest) table, so each step is a column slice: per-model
        # Python work once an epoch, not once a step (it cost as much as the small models' maths)
        order = torch.zeros(M, longest, dtype=torch.long)
        weight = torch.zeros(M, longest)
        for i, (s, g) in enumerate(zip(subs, gens)):
            order[i, :len(s)] = s[torch.randperm(len(s), generator=g)]
            weight[i, :len(s)] = 1.0
        order, weight = order.to(dev), weight.to(dev)
        for s in range(math.ceil(longest / bs)):
            idx, w = order[:, s * bs:(s + 1) * bs], weight[:, s * bs:(s + 1) * bs]
            g, _ = step_fn(flat, X[idx], y[idx], w)
            opt.step(flat, g, w.sum(1) > 0)
        progress(stage, epoch + 1, recipe.epochs)
    return {k: v.detach() for k, v in spec.views(flat).items()}


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
