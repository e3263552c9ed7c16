from __future__ import annotations

import copy
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ResidueError
from ..training import endless_batches, make_optimizer
from .base import Method, Param, register
from .l1_sparse import l1_norm
from .random_label import wrong_labels

L1_WEIGHT = 5e-5  # the official replay phase's ℓ1 weight
REPLAY_SCHEDULE = ((3, 1.0), (2, 0.5), (1, 0.2))  # (epochs, share of lr₂), the official class-wise schedule


def orth_loss(H: torch.Tensor) -> torch.Tensor:
    """L_orth(H) = ‖HHᵀ − I‖²_F / (B(B−1)) on the rows of H flattened and L2-normalised: the mean squared
    cosine similarity between different samples (0 for a batch of mutually orthogonal features)."""
    H = H.flatten(1)
    B = H.shape[0]
    if B < 2:
        return H.new_zeros(())
    H = H / (H.norm(dim=1, keepdim=True) + 1e-8)
    gram = H @ H.T
    return ((gram - torch.eye(B, device=H.device, dtype=H.dtype)) ** 2).sum() / (B * (B - 1))


def self_cos2(H: torch.Tensor, H0: torch.Tensor) -> torch.Tensor:
    """Mean over samples of cos²(h(x), h_orig(x)): the sample-wise orthogonality loss."""
    H, H0 = H.flatten(1), H0.flatten(1)
    cos = (H * H0).sum(1) / (H.norm(dim=1) * H0.norm(dim=1) + 1e-8)
    return (cos ** 2).mean()


def resolve_layers(model: nn.Module, spec: str) -> list[str]:
    """Hooked layer names: a comma-separated list, or '' for the model's two deepest hidden layers."""
    names = [s.strip() for s in spec.split(",") if s.strip()]
    hidden = list(getattr(model, "hidden_layer_names", []))
    if not names:
        names = hidden[-2:]
    known = set(getattr(model, "layer_names", hidden))
    bad = [n for n in names if n not in known or not hasattr(model, "blocks")]
    if bad or not names:
        raise ResidueError(f"orthogonal_replay: layers must name the model's layers {sorted(known)}, got {spec!r}.")
    return names


@contextmanager
def capture(model: nn.Module, layers: list[str]):
    """Forward hooks on `model.blocks[l]`; yields a dict filled with each layer's output at every forward."""
    out: dict[str, torch.Tensor] = {}
    handles = [model.blocks[n].register_forward_hook(lambda _m, _i, o, n=n: out.__setitem__(n, o)) for n in layers]
    try:
        yield out
    finally:
        for h in handles:
            h.remove()


def wholly_forgotten(task) -> bool:
    """True when no retain sample shares a class with the forget set (class-wise forgetting)."""
    return not bool(torch.isin(task.retain_y, task.forget_y.unique()).any())


@register
class OrthogonalReplay(Method):
    """Orthogonal unlearning and replay, the ReA paper's defence, in two phases.

    Why: after ordinary unlearning the forget samples' deep features still share their class structure
    (a residual the reminiscence attack re-learns fast), and the model sits at a pseudo-converged point.
    Phase 1 (orthogonal unlearning) breaks the structure in feature space; phase 2 (replay) trains on
    D_r alone so the model settles into a stable minimum.

    Phase 1, class-wise: every forget sample gets a fixed random label from the retained classes; minimise
    CE(random labels) + β·Σ_l L_orth(H_l), L_orth(H) = ‖HHᵀ − I‖²_F / (B(B−1)) on the forget batch's
    flattened, L2-normalised features at the hooked layers (Adam at lr₁, 3 epochs, β = 2).
    Phase 1, sample-wise: minimise Σ_l mean_i cos²(h_l(x_i), h_l^orig(x_i)) + 0.1·CE(labels drawn uniformly
    at random every batch), pushing each forget sample's feature orthogonal to its own feature under θ_o
    (AdamW at lr₁ with weight decay 1e-4, 6 epochs).
    Phase 2, replay: D_r only, CE + 5e-5·‖θ‖₁, 3 epochs at lr₂, 2 at 0.5·lr₂, 1 at 0.2·lr₂ (SGD, momentum
    0.9, weight decay 5e-4, a fresh optimiser per stage, as the official code's `fit_one_cycle` calls).

    Our reading (`reading = True`), where the official code is silent or model-specific: `mode="auto"`
    picks class-wise when the forget set's classes are wholly forgotten (no retain sample has them) and
    sample-wise otherwise; the default hooked layers are the model's two deepest hidden layers (the
    official ResNet code registers three hooks but, through a typo, reads the second one twice, so two
    distinct layers are used there too); the sample-wise phase 2 uses the class-wise schedule above (the
    official sample-wise script varies per dataset); both phases share `batch_size` (the official code
    uses 128 class-wise, 64 sample-wise)."""

    name = "orthogonal_replay"
    title = "Orthogonal unlearning + replay (ReA defence)"
    summary = "Make forget-set deep features mutually orthogonal, then replay the retain set to a stable minimum."
    reference = ("The ReA paper's defence ('orthogonal unlearning and replay'); official code: "
                 "github.com/orthogonalunlearning-replay/OUR.")
    reading = True
    params = (
        Param("mode", "auto", help="class-wise or sample-wise phase 1; auto = class-wise when the forget "
              "classes are wholly forgotten", choices=("auto", "class", "sample")),
        Param("beta", 2.0, 0.0, 100.0, "β: weight of the orthogonality loss (class-wise)"),
        Param("lr1", 1.5e-3, 1e-6, 1e-1, "phase-1 learning rate (Adam / AdamW)", log=True),
        Param("lr2", 1e-2, 1e-6, 1.0, "phase-2 (replay) learning rate lr₂ (SGD)", log=True),
        Param("epochs1", 0, 0, 100, "phase-1 passes over the forget set; 0 = official (3 class-wise, 6 sample-wise)"),
        Param("layers", "", help="hooked layers, comma-separated (e.g. 'block1,block2'); empty = the two "
              "deepest hidden layers"),
        Param("replay", True, help="run phase 2 (off: see what phase 1 alone leaves)"),
        Param("batch_size", 128, 8, 4096, "mini-batch size of both phases"),
    )

    def mode_for(self, task) -> str:
        m = self.hp["mode"]
        return ("class" if wholly_forgotten(task) else "sample") if m == "auto" else m

    def _run(self, model, task, loop):
        layers = resolve_layers(model, str(self.hp["layers"]))
        if self.mode_for(task) == "class":
            self._class_wise(model, task, loop, layers)
        else:
            self._sample_wise(model, task, loop, layers)
        if self.hp["replay"]:
            self._replay(model, task, loop)

    def _class_wise(self, model, task, loop, layers):
        hp = self.hp
        g = task.generator(6)
        forgotten = set(task.forget_y.tolist())
        keep = torch.tensor([c for c in range(task.n_classes) if c not in forgotten], dtype=torch.long)
        if len(keep):
            labels = keep[torch.randint(0, len(keep), (len(task.forget_y),), generator=g)].to(task.forget_y.device)
        else:
            labels = wrong_labels(task.forget_y, task.n_classes, g)
        epochs = hp["epochs1"] or 3
        opt = make_optimizer(model.parameters(), "adam", hp["lr1"])
        steps = epochs * task.steps_per_epoch("forget", hp["batch_size"])
        loop.phase("orthogonal", steps)
        order = _index_batches(task, "forget", hp["batch_size"], salt=7)
        with capture(model, layers) as feats:
            for _ in range(steps):
                idx = next(order)
                out = model(task.forget_X[idx])
                ortho = sum(orth_loss(feats[n]) for n in layers)
                ce = F.cross_entropy(out, labels[idx])
                loop.step(ce + hp["beta"] * ortho, opt, orth_loss=ortho.detach(), ce_loss=ce.detach())

    def _sample_wise(self, model, task, loop, layers):
        hp = self.hp
        g = task.generator(6)
        original = copy.deepcopy(model).eval()
        epochs = hp["epochs1"] or 6
        opt = make_optimizer(model.parameters(), "adamw", hp["lr1"], weight_decay=1e-4)
        steps = epochs * task.steps_per_epoch("forget", hp["batch_size"])
        loop.phase("orthogonal", steps)
        forget = task.batches("forget", hp["batch_size"], salt=7)
        with capture(model, layers) as feats, capture(original, layers) as feats0:
            for _ in range(steps):
                X, y = next(forget)
                with torch.no_grad():
                    original(X)
                out = model(X)
                ortho = sum(self_cos2(feats[n], feats0[n].detach()) for n in layers)
                labels = torch.randint(0, task.n_classes, (len(y),), generator=g).to(y.device)
                ce = F.cross_entropy(out, labels)
                loop.step(ortho + 0.1 * ce, opt, orth_loss=ortho.detach(), ce_loss=ce.detach())

    def _replay(self, model, task, loop):
        hp = self.hp
        per_epoch = task.steps_per_epoch("retain", hp["batch_size"])
        loop.phase("replay", sum(e for e, _ in REPLAY_SCHEDULE) * per_epoch)
        retain = task.batches("retain", hp["batch_size"], salt=8)
        for epochs, share in REPLAY_SCHEDULE:
            opt = make_optimizer(model.parameters(), "sgd", hp["lr2"] * share, momentum=0.9, weight_decay=5e-4)
            for _ in range(epochs * per_epoch):
                X, y = next(retain)
                ce = F.cross_entropy(model(X), y)
                l1 = l1_norm(model)
                loop.step(ce + L1_WEIGHT * l1, opt, retain_loss=ce.detach(), l1=l1.detach())


def _index_batches(task, part: str, batch_size: int, salt: int):
    """Endless shuffled index batches of a part (so fixed per-sample labels can follow their samples)."""
    n = len(task.forget_y if part == "forget" else task.retain_y)
    yield from endless_batches(n, batch_size, task.generator(salt), task.forget_X.device)
