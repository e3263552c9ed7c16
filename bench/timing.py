"""How every script in bench/ times things, so that two sides of a comparison are timed the same way.

* `interleaved`: the contenders run in turn, round after round, and each keeps its best of the same N
  runs: a burst of load from another process hits all of them alike instead of one. `paired` gives the
  median of per-round ratios beside the ratio of bests.
* `matmul_peak`: a float32 matmul, timed as one more contender in the same rounds, is the yardstick;
  `share` prints achieved FLOP/s as a share of it, a figure that means the same on a quiet and a busy
  machine.
* `forward_flops`: FLOPs of one forward pass per sample, counted once by torch's FlopCounterMode (for an
  MLP that is 2 × its weights); a backward pass costs about twice the forward, so training costs
  `TRAIN` × forward per sample.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable

TRAIN = 3.0  # forward + backward ≈ 3 × forward (backward ≈ 2 × forward: gradients w.r.t. inputs and weights)
PEAK = "matmul peak"


def load() -> str:
    """The load average beside the core count: above the cores, other processes compete for them."""
    return f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} cores"


@dataclass
class Timing:
    best: float  # seconds, best of the runs
    cpu: float  # process CPU seconds of that best run
    runs: list[float] = field(default_factory=list)
    out: Any = None  # what the last run returned


def interleaved(fns: dict[str, Callable[[], Any]], repeats: int = 5, warm: bool = True) -> dict[str, Timing]:
    """Time every contender `repeats` times, taking turns, and keep each one's best (with its CPU time).
    `warm`: one untimed run each first (one-off imports, allocations, first-call dispatch)."""
    if warm:
        for fn in fns.values():
            fn()
    out = {name: Timing(float("inf"), 0.0) for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t, c = time.perf_counter(), time.process_time()
            res = fn()
            wall, cpu = time.perf_counter() - t, time.process_time() - c
            rec = out[name]
            rec.runs.append(wall)
            rec.out = res
            if wall < rec.best:
                rec.best, rec.cpu = wall, cpu
    return out


def paired(a: Timing, b: Timing) -> float:
    """Median over rounds of a's time / b's time in the same round: on a busy machine a burst of load lands
    on both runs of a round, so this ratio is steadier than a ratio of bests (print both)."""
    import statistics

    return statistics.median(x / y for x, y in zip(a.runs, b.runs))


def matmul_task(n: int = 1024, reps: int = 10) -> tuple[Callable[[], None], float]:
    """(a run of `reps` n×n float32 matmuls, its FLOPs): the yardstick to put in `interleaved` under PEAK."""
    import torch

    a, b, c = torch.randn(n, n), torch.randn(n, n), torch.empty(n, n)

    def run() -> None:
        for _ in range(reps):
            torch.mm(a, b, out=c)

    return run, 2.0 * n ** 3 * reps


def matmul_peak(n: int = 1024, reps: int = 10, repeats: int = 5) -> float:
    """FLOP/s of an n×n float32 matmul now (best of `repeats`), for a script with nothing to interleave."""
    run, flops = matmul_task(n, reps)
    return flops / interleaved({PEAK: run}, repeats)[PEAK].best


def with_peak(fns: dict[str, Callable[[], Any]], repeats: int = 5, warm: bool = True,
              n: int = 1024) -> tuple[dict[str, Timing], float]:
    """`interleaved` with the matmul yardstick as one more contender: (timings, peak FLOP/s of this run)."""
    run, flops = matmul_task(n)
    t = interleaved({**fns, PEAK: run}, repeats, warm)
    return t, flops / t.pop(PEAK).best


def forward_flops(model, input_shape: tuple[int, ...]) -> float:
    """FLOPs of one forward pass per sample (matmuls and convolutions, as FlopCounterMode counts them)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        model(torch.zeros(8, *input_shape))
    return fc.get_total_flops() / 8


def share(flops: float, seconds: float, peak: float) -> str:
    """'12.3 GFLOP/s = 45% of peak'."""
    rate = flops / seconds
    return f"{rate / 1e9:.1f} GFLOP/s = {rate / peak:.0%} of peak"


def profile(fn: Callable[[], Any], top: int = 8) -> str:
    """Where one run of `fn` spends its CPU time, by operator (torch.profiler): the share of the matmuls (the
    part that counts as FLOPs) against everything else."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    ops = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in ops) or 1
    mm = sum(e.self_cpu_time_total for e in ops if e.key in ("aten::bmm", "aten::baddbmm", "aten::mm", "aten::addmm"))
    lines = [f"matmuls (bmm/baddbmm/mm/addmm) {mm / total:.0%} of the CPU time, the rest elsewhere; top operators:"]
    lines += [f"{e.key:<28}{e.self_cpu_time_total / total:>6.1%}  ({e.count} calls)" for e in ops[:top]]
    return "\n".join(lines)
