"""Unlearning methods (issue 11): cost against retraining, and what each one forgets.

`python bench/methods.py` (or `python bench/run.py --only methods`). On the default classroom experiment
(digits, MLP, forget class 7) with every registered method and a fresh temporary model cache, so
`retrain` is really trained in the same run, it prints for each method: wall time, ratio to retrain,
forget / retain / test accuracy; then the wall time of the whole comparison.

Budgets: every approximate method <= 25% of retrain, orthogonal_replay <= 15%; the full comparison <= 30 s.
Timings on a shared 2-core machine are noisy, so each method (and retrain) is timed again three times,
in turns with each other and with a matmul that gives the run's peak (bench/timing.py), and the best of the
three is shown beside the in-run figure; the verdict uses the best-of-three wall-time ratio; retrain's
throughput is also given as a share of the peak. The CPU-time ratio (process time, best of three) is printed as a cross-check that other processes
on the machine disturb less (run with OMP_NUM_THREADS=1 for the cleanest figure).
Before anything is timed, one step of each optimiser runs once: the first `optimizer.step()` in a
process pays about 2 s of one-off imports, which would otherwise land on whichever model trains first.
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.timing import TRAIN, forward_flops, load, share, with_peak  # noqa: E402

APPROX_BUDGET = 0.25
BUDGETS = {"orthogonal_replay": 0.15}
TOTAL_BUDGET = 30.0
REPEATS = 3


def warm_up() -> None:
    import torch

    from core.training import make_optimizer

    for name in ("adam", "adamw", "sgd"):
        m = torch.nn.Linear(4, 2)
        opt = make_optimizer(m.parameters(), name, 1e-3)
        m(torch.randn(3, 4)).sum().backward()
        opt.step()


def main() -> None:
    import torch

    from core import Experiment, ExperimentConfig
    from core.cache import ModelStore
    from core.config import MethodConfig
    from core.training import train
    from core.unlearn import get_method, methods

    names = sorted(methods.names())
    print("== methods: every registered unlearning method on the default classroom experiment "
          "(digits, MLP, forget 7), fresh cache ==")
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, device cpu, methods {len(names)}")
    warm_up()
    with tempfile.TemporaryDirectory() as d:
        cfg = ExperimentConfig(methods=[MethodConfig(n) for n in names])
        exp = Experiment(cfg, store=ModelStore(d), device="cpu")
        t0 = time.perf_counter()
        res = exp.run()
        total = time.perf_counter() - t0

        # best-of-three re-timing, same process, same inputs
        task = exp.task()
        original = exp.models["original"]
        split = exp.prepare()
        Xr, yr = split.tensors("retain")
        # retrain and every approximate method, best of REPEATS, in turns with each other and with the matmul
        # yardstick (bench/timing.py); a method's own `seconds` is what it reports, so time it that way too
        def retrain() -> float:
            return train(exp.fresh_model(), Xr, yr, cfg.recipe, seed=cfg.seed).seconds

        fns = {"retrain": retrain, **{n: (lambda n=n: get_method(n).unlearn(original, task).seconds)
                                      for n in names if not methods.get(n).exact}}
        t, peak = with_peak(fns, REPEATS, warm=False)
        best = {k: v.best for k, v in t.items()}
        cpu = {k: v.cpu for k, v in t.items()}
        flops = TRAIN * forward_flops(exp.fresh_model(), split.dataset.input_shape) * cfg.recipe.epochs * len(yr)

    t_retrain = res.model("retrain").seconds
    print(f"  retrain: {t_retrain:.3f} s in the run, best of {REPEATS} {best['retrain']:.3f} s wall, "
          f"{cpu['retrain']:.3f} s CPU, {share(flops, best['retrain'], peak)} (peak {peak / 1e9:.1f} GFLOP/s; "
          f"{load()})")
    print(f"  {'method':<19}{'seconds':>8}{'x retr.':>8}{'best':>8}{'x retr.':>8}{'budget':>8}  "
          f"{'':<5}{'CPU x':>7}{'forget':>7}{'retain':>7}{'test':>7}  status")
    misses = []
    for m in res.models:
        if m.role == "original":
            continue
        exact = methods.get(m.method).exact
        budget = None if exact else BUDGETS.get(m.method, APPROX_BUDGET)
        b = best.get(m.method, float("nan"))
        ratio_best = b / best["retrain"]
        verdict = "" if budget is None else ("ok" if ratio_best <= budget else "MISS")
        if verdict == "MISS":
            misses.append(m.name)
        ratio = m.seconds / t_retrain if t_retrain > 0 else float("nan")
        ratio_cpu = cpu.get(m.method, float("nan")) / cpu["retrain"]
        print(f"  {m.name:<19}{m.seconds:>8.3f}{ratio:>8.1%}{b:>8.3f}{ratio_best:>8.1%}"
              f"{'' if budget is None else f'{budget:.0%}':>8}  {verdict:<5}{ratio_cpu:>7.1%}{m.forget_acc:>7.3f}"
              f"{m.retain_acc:>7.3f}{m.test_acc:>7.3f}  {m.status}")
    print(f"  full comparison (train original + retrain, {len(names)} methods, measure): {total:.2f} s "
          f"(budget {TOTAL_BUDGET:.0f} s: {'ok' if total <= TOTAL_BUDGET else 'MISS'})")
    if misses:
        print(f"  over budget: {', '.join(misses)}")


if __name__ == "__main__":
    main()
