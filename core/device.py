"""Where tensors live: CUDA when present (or RESIDUE_DEVICE says so), else CPU."""
from __future__ import annotations

import os

import torch


def default_device() -> torch.device:
    wanted = os.environ.get("RESIDUE_DEVICE")
    if wanted:
        return torch.device(wanted)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def memory_budget(device: torch.device | str) -> int | None:
    """Bytes that one call stacking many models (shadows, yardstick retrains, landscape grids) may take on
    `device`: `$RESIDUE_MEMORY_BUDGET` when set (bytes, or with a K/M/G suffix; honoured on the CPU too, which is
    how tests exercise the chunking), else on CUDA 70% of the free memory `torch.cuda.mem_get_info` reports.
    None on the CPU: no limit, nothing is chunked, results are as they always were."""
    text = os.environ.get("RESIDUE_MEMORY_BUDGET", "").strip().upper()
    if text:
        scale = {"K": 2**10, "M": 2**20, "G": 2**30}.get(text[-1], 1)
        try:
            return max(1, int(float(text.rstrip("KMG")) * scale))
        except ValueError:
            from .errors import ResidueError

            raise ResidueError(f"RESIDUE_MEMORY_BUDGET must be a number of bytes (e.g. 2G), got {text!r}.") from None
    device = torch.device(device)
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(0.7 * free)
    return None
