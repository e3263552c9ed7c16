"""Where tensors live: CUDA when present (or RESIDUE_DEVICE says so), else CPU."""
from __future__ import annotations

import os

import torch


def default_device() -> torch.device:
    wanted = os.environ.get("RESIDUE_DEVICE")
    if wanted:
        return torch.device(wanted)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
