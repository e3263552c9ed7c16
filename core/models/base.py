"""Model registry. Every model names its probe-able layers (`layer_names`), in order, so heatmaps,
hooks and activation patching address layers the same way across architectures."""
from __future__ import annotations

import math

import torch
from torch import nn

from ..errors import ResidueError
from ..registry import Registry

models: Registry = Registry("model")


class Classifier(nn.Module):
    """Base for Residue's models: a stack of named blocks ending in `head` (the logits)."""

    blocks: nn.ModuleDict

    @property
    def layer_names(self) -> list[str]:
        return list(self.blocks.keys())

    @property
    def hidden_layer_names(self) -> list[str]:
        """Every layer but the logits: the 'deep features' the defences and probes look at."""
        return self.layer_names[:-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks.values():
            x = block(x)
        return x

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate-layer features (input to the head), flattened."""
        for name, block in self.blocks.items():
            if name == "head":
                break
            x = block(x)
        return x.flatten(1)


def init_weights(model: nn.Module, seed: int) -> nn.Module:
    """PyTorch's default init, drawn from a private generator: same seed, same weights, on any thread."""
    g = torch.Generator().manual_seed(int(seed))
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            with torch.no_grad():
                w = torch.empty(m.weight.shape)
                nn.init.kaiming_uniform_(w, a=math.sqrt(5), generator=g)
                m.weight.copy_(w)
                if m.bias is not None:
                    fan_in = m.weight[0].numel()
                    bound = 1 / math.sqrt(fan_in)
                    m.bias.copy_(torch.empty(m.bias.shape).uniform_(-bound, bound, generator=g))
    return model


def build_model(name: str, input_shape: tuple[int, ...], n_classes: int, seed: int = 0, **params) -> Classifier:
    """Build a registered architecture with deterministic initial weights."""
    cls = models.get(name)
    try:
        model = cls(tuple(input_shape), int(n_classes), **params)
    except ResidueError:
        raise
    except (TypeError, ValueError) as e:
        raise ResidueError(f"model '{name}': bad option ({e}).") from None
    return init_weights(model, seed)


def check_state_dict(model: nn.Module, state: dict) -> None:
    """Refuse a checkpoint that does not fit the architecture, naming the first mismatch."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    extra = [k for k in state if k not in own]
    if missing or extra:
        raise ResidueError(
            f"Checkpoint does not match the architecture: missing {missing[:3]}, unexpected {extra[:3]}."
        )
    for k, v in own.items():
        if not isinstance(state[k], torch.Tensor) or tuple(state[k].shape) != tuple(v.shape):
            got = tuple(state[k].shape) if isinstance(state[k], torch.Tensor) else type(state[k]).__name__
            raise ResidueError(f"Checkpoint tensor '{k}' has shape {got}, the model expects {tuple(v.shape)}.")
