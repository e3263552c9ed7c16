"""LiRA, the likelihood-ratio membership attack (Carlini et al. 2022), online and offline.

Shadow models are trained (all at once, `core.batched.train_many`) on pool = shadow pool ∪ query samples
with random inclusion: every query sample is IN for round(in_fraction·M) shadows and OUT for the others.
Per query and per augmented view a, the logit-scaled confidence φ = log p_y − log Σ_{j≠y} p_j is measured
on every shadow and on the target. Per sample and view, μ_in / μ_out = median of φ over the IN / OUT
shadows; with `global_variance` (the fixed-variance LiRA that works with few shadows) one σ_in and one σ_out
for all samples, else a per-sample σ.

* online score  Λ = mean_a [log N(φ_a; μ_in, σ_in) − log N(φ_a; μ_out, σ_out)]
* offline score (OUT shadows only): one-sided, as in the paper, Λ = mean_a log Φ((φ_a − μ_out)/σ_out) (how far
  above the non-member distribution φ lies); `offline_test="two_sided"` uses −log N(φ_a; μ_out, σ_out) as
  the official code does.

Our reading: the global σ is the pooled spread of φ around each sample's own median (Carlini et al.'s code
takes the std over all samples and shadows together, which also counts how samples differ from each other).

Queries: for images (N, C, H, W) the identity and the four one-pixel shifts (zero fill), never flips
(digits are not mirror-symmetric); for other data the identity only.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from .. import metrics
from ..params import Param
from ..progress import Progress, as_progress
from .base import Attack, AttackContext, AttackResult, register
from .mia import QUERY_PARAMS, SHADOW_PARAMS, groups_of, phi, query_sets, shadows_for
from .shadow import ShadowSet

SHIFTS = ((0, 0), (1, 0), (-1, 0), (0, 1), (0, -1))  # (dy, dx); the first is the identity


def shift_image(X: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """Images (N, C, H, W) moved by (dy, dx) pixels, the uncovered border filled with 0."""
    if dy == 0 and dx == 0:
        return X
    out = torch.zeros_like(X)
    H, W = X.shape[-2:]
    ys, yd = (slice(0, H - dy), slice(dy, H)) if dy >= 0 else (slice(-dy, H), slice(0, H + dy))
    xs, xd = (slice(0, W - dx), slice(dx, W)) if dx >= 0 else (slice(-dx, W), slice(0, W + dx))
    out[..., yd, xd] = X[..., ys, xs]
    return out


def augmented_queries(X: torch.Tensor, augment: bool = True) -> list[torch.Tensor]:
    """The views each sample is queried with: identity (+ one-pixel shifts for image batches)."""
    if not augment or X.dim() != 4 or min(X.shape[-2:]) < 3:
        return [X]
    return [shift_image(X, dy, dx) for dy, dx in SHIFTS]


def _norm_logpdf(x: np.ndarray, mu: np.ndarray, sigma) -> np.ndarray:
    sigma = np.maximum(sigma, 1e-30)
    return -0.5 * ((x - mu) / sigma) ** 2 - np.log(sigma) - 0.5 * math.log(2 * math.pi)


def _norm_logcdf(z: np.ndarray) -> np.ndarray:
    return torch.special.log_ndtr(torch.as_tensor(z, dtype=torch.float64)).numpy()


def _center_spread(phis: np.ndarray, mask: np.ndarray, global_variance: bool) -> tuple[np.ndarray, np.ndarray]:
    """Per-(sample, view) median over the masked shadows and the σ (global pooled or per sample).

    phis (M, N, A), mask (M, N) -> mu (N, A), sigma (scalar array or (N, A))."""
    vals = np.where(mask[..., None], phis, np.nan)
    mu = np.nanmedian(vals, axis=0)
    res = vals - mu[None]
    if global_variance:  # one σ per view, pooled over samples and shadows
        count = np.isfinite(res).sum(axis=(0, 1))
        groups = mu.shape[0]
        sigma = np.sqrt(np.nansum(res ** 2, axis=(0, 1)) / np.maximum(count - groups, 1))
        return mu, np.maximum(sigma, 1e-3)[None, :]
    n = mask.sum(0)[:, None]
    sigma = np.sqrt(np.nansum(res ** 2, axis=0) / np.maximum(n - 1, 1))
    return mu, np.maximum(sigma, 1e-3)


def lira_scores(phi_target: np.ndarray, phi_shadow: np.ndarray, keep: np.ndarray,
                global_variance: bool = True, offline_test: str = "one_sided") -> dict[str, np.ndarray]:
    """LiRA member scores. phi_target (N, A), phi_shadow (M, N, A), keep (M, N) bool (IN).

    Returns {"online": (N,), "offline": (N,), "mu_in", "mu_out", "sigma_in", "sigma_out"}."""
    phi_target = np.asarray(phi_target, dtype=np.float64)
    phi_shadow = np.asarray(phi_shadow, dtype=np.float64)
    keep = np.asarray(keep, dtype=bool)
    mu_in, s_in = _center_spread(phi_shadow, keep, global_variance)
    mu_out, s_out = _center_spread(phi_shadow, ~keep, global_variance)
    online = (_norm_logpdf(phi_target, mu_in, s_in) - _norm_logpdf(phi_target, mu_out, s_out)).mean(-1)
    if offline_test == "two_sided":
        offline = (-_norm_logpdf(phi_target, mu_out, s_out)).mean(-1)
    else:
        offline = _norm_logcdf((phi_target - mu_out) / np.maximum(s_out, 1e-30)).mean(-1)
    return {"online": online, "offline": offline, "mu_in": mu_in, "mu_out": mu_out,
            "sigma_in": s_in, "sigma_out": s_out}


def query_phi(logits_fn, X: torch.Tensor, y: torch.Tensor, augment: bool) -> np.ndarray:
    """φ of every augmented view: logits_fn(X_view) -> (..., N, C); result (..., N, A)."""
    return np.stack([phi(logits_fn(Xa), y).cpu().numpy() for Xa in augmented_queries(X, augment)], axis=-1)


def shadow_phi(sh: ShadowSet, ctx: AttackContext, ids: np.ndarray, augment: bool) -> np.ndarray:
    """φ of the shadows on the queries, (M, N, A); memoised on the shadow set."""
    key = ("phi", tuple(np.asarray(ids).tolist()), bool(augment))
    if key not in sh.memo:
        X, y = ctx.split.tensors(ids)
        sh.memo[key] = query_phi(sh.logits, X, y, augment)
    return sh.memo[key]


LIRA_PARAMS = QUERY_PARAMS + SHADOW_PARAMS + (
    Param("augment", False, help="also query the four one-pixel shifts (images only; never flips). Helps models "
          "trained with shifts; ours are not, and on 8x8 digits the shifted views mostly add noise"),
    Param("global_variance", True, help="one σ for all samples (fixed-variance LiRA; best with few shadows)"),
    Param("offline_test", "one_sided", help="offline score: one-sided (paper) or two-sided density (official code)",
          choices=("one_sided", "two_sided")),
)


def run_lira(ctx: AttackContext, model, hp: dict, target: str, names: dict[str, str],
             progress: Progress | None = None, extra: dict | None = None) -> list[AttackResult]:
    """LiRA of `model` with the hyperparameters `hp` (LIRA_PARAMS); `names` maps "online"/"offline" to the
    result names to emit (only those are returned)."""
    mem, non = query_sets(ctx, hp["members"], hp["nonmembers"], hp["max_queries"])
    ids = np.r_[mem, non]
    labels = np.r_[np.ones(len(mem), int), np.zeros(len(non), int)]
    sh = shadows_for(ctx, ids, hp, progress)
    phis = shadow_phi(sh, ctx, ids, hp["augment"])
    keep = sh.member_mask(ids)
    X, y = ctx.split.tensors(ids)
    phi_t = query_phi(lambda Z: metrics.logits(model, Z), X, y, hp["augment"])
    sc = lira_scores(phi_t, phis, keep, hp["global_variance"], hp["offline_test"])
    groups = groups_of(metrics.logits(model, X), y)
    info = {"n_shadows": sh.n_models, "in_per_sample": int(keep.sum(0).min()), "views": int(phis.shape[-1]),
            "shadow_seconds": sh.seconds, "shadows_cached": sh.cached,
            "sigma_in": float(np.mean(sc["sigma_in"])), "sigma_out": float(np.mean(sc["sigma_out"])),
            "global_variance": hp["global_variance"], **(extra or {})}
    out = []
    for mode in ("online", "offline"):
        if mode in names:
            out.append(AttackResult(names[mode], target, sc[mode], labels, ids, groups,
                                    {**info, "mode": mode, **({"offline_test": hp["offline_test"]}
                                                               if mode == "offline" else {})}))
    return out


@register
class LiRA(Attack):
    """Likelihood-ratio attack, online and offline, fixed variance, augmented queries."""

    name = "lira"
    title = "LiRA (likelihood-ratio attack)"
    summary = ("For each sample, shadow models trained with and without it give two distributions of the "
               "logit-scaled confidence; the target's value is scored by the likelihood ratio.")
    reference = "Carlini et al. 2022, Membership Inference Attacks From First Principles."
    params = LIRA_PARAMS

    def run(self, ctx: AttackContext, target: str, progress: Progress | None = None) -> list[AttackResult]:
        progress = as_progress(progress)
        out = run_lira(ctx, ctx.models[target], self.hp, target,
                       {"online": "lira_online", "offline": "lira_offline"}, progress)
        progress("LiRA", 1, 1)
        return out
