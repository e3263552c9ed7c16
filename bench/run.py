"""Speed budgets, measured (not timed tests). `python bench/run.py [--only foundation,methods,...]`.

Prints the foundation figures (issue 3) and then every other section found in bench/: each
`bench/<section>.py` with a `main()` prints its own figures.
"""
from __future__ import annotations

import argparse
import importlib
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SECTIONS = ["foundation", "methods", "attacks_mia", "attacks_leak", "probes", "landscape", "parsing", "quality",
            "dashboard"]


COLD = """
import json, sys, time
t0 = time.perf_counter()
from core import Experiment, ExperimentConfig
from core.cache import ModelStore
t1 = time.perf_counter()
r = Experiment(ExperimentConfig(), store=ModelStore(sys.argv[1]), device="cpu").run()
t2 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "run": t2 - t1, "models": {m.name: m.seconds for m in r.models}}))
"""


def foundation() -> None:
    import torch

    from bench.timing import TRAIN, forward_flops, load, share, with_peak

    from core import Experiment, ExperimentConfig
    from core.cache import ModelStore

    print("== foundation: default classroom experiment (digits, MLP, forget 7; original + retrain + "
          "finetune + gradient_ascent) ==")
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, device cpu")
    with tempfile.TemporaryDirectory() as d:
        wall = []
        for label in ("empty cache", "models cached"):
            t = time.perf_counter()
            out = subprocess.run([sys.executable, "-c", COLD, d], capture_output=True, text=True, cwd=ROOT,
                                 check=True)
            wall.append(time.perf_counter() - t)
            info = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"  {label:<14} whole process {wall[-1]:6.2f} s  (imports {info['import']:.2f} s, "
                  f"experiment {info['run']:.2f} s)   budget {'10' if label == 'empty cache' else '2'} s")
    with tempfile.TemporaryDirectory() as d:
        exp = Experiment(ExperimentConfig(), store=ModelStore(d), device="cpu")
        r = exp.run()
        t_retrain = r.model("retrain").seconds
        print(f"  {'model':<18}{'seconds':>9}{'x retrain':>11}{'forget':>8}{'retain':>8}{'test':>8}")
        for m in r.models:
            print(f"  {m.name:<18}{m.seconds:>9.3f}{m.seconds / t_retrain:>11.3f}{m.forget_acc:>8.3f}"
                  f"{m.retain_acc:>8.3f}{m.test_acc:>8.3f}")
        split = exp.prepare()
        samples = exp.config.recipe.epochs * len(split.train)
        flops = TRAIN * forward_flops(exp.fresh_model(), split.dataset.input_shape) * samples
        # best of 3 trainings of θ_o's recipe, interleaved with the matmul yardstick (bench/timing.py)
        from core.training import train

        X, y = split.tensors(split.train)
        t, peak = with_peak({"train": lambda: train(exp.fresh_model(), X, y, exp.config.recipe, seed=exp.config.seed)},
                            3)
        best, worst = t["train"].best, max(t["train"].runs)
    print(f"  training θ_o (batch {exp.config.recipe.batch_size}), best of 3 interleaved with a 1024x1024 fp32 "
          f"matmul: {best:.2f} s (worst {worst:.2f} s), {share(flops, best, peak)} "
          f"(peak {peak / 1e9:.1f} GFLOP/s; budget >= 20%: {'ok' if flops / best / peak >= 0.2 else 'MISS'}); {load()}")
    print(f"  original test accuracy {r.model('original').test_acc:.3f} (budget >= 0.95)")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"  peak RSS of this process {rss:.0f} MB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--only", default="", help="comma-separated sections (default: all)")
    args = ap.parse_args()
    wanted = [s for s in args.only.split(",") if s] or SECTIONS
    for section in wanted:
        if section == "foundation":
            foundation()
        elif (ROOT / "bench" / f"{section}.py").exists():
            print()
            importlib.import_module(f"bench.{section}").main()
        sys.stdout.flush()


if __name__ == "__main__":
    main()
