"""Membership attacks (issue 12): what each attack costs, and vectorised vs one-by-one shadow training.

`python bench/attacks_mia.py` (or `python bench/run.py --only attacks_mia`). On the default classroom
experiment (digits, MLP (256, 256), forget class 7) with the finetune method:

1. the wall (and CPU) time of each attack against the finetune model, LiRA first with *no* cached shadows
   (16 shadow models trained inside the timing; in-process memo cleared, no disk store), then the
   others, which reuse those shadows as they would in a session, and LiRA again warm;
2. the same 16 shadow models (same subsets, seeds and recipe) trained with `core.batched.train_many` and
   one by one with `core.training.train`, best of 3 each, interleaved with each other and with a matmul
   (bench/timing.py): times, ratio, the throughput of each as a share of that run's matmul peak, and how
   far apart the weights end up;
3. the AUC / TPR@1%FPR of every attack on original, retrain and finetune (the findings).

Budgets: LiRA with 16 shadows, cold, <= 20 s; vectorised training >= 5x faster than one by one (issue 12)
and >= 50% of the run's matmul peak (issue 24).
The machine is shared: the load average is printed, and CPU time beside wall time.
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

LIRA_BUDGET = 20.0
RATIO_BUDGET = 5.0
SHARE_BUDGET = 0.5  # vectorised shadow training, share of the same run's matmul peak (issue 24)
REPEATS = 3
ATTACKS = ["lira", "mia_threshold", "mia_shadow", "mia_efficacy", "privacy_score", "rea_sample"]


def _timed(fn):
    """One cold run (a cold attack can only be timed once), as bench/timing.py times everything."""
    from bench.timing import interleaved

    t = interleaved({"": fn}, 1, warm=False)[""]
    return t.out, t.best, t.cpu


def step_matmuls(template, models: int, batch: int, steps: int):
    """(a run of just the batched matmuls of `steps` training steps of `models` MLPs on `batch` samples each, its
    FLOPs): forward h·Wᵀ, input gradient d·W and weight gradient dᵀ·h per Linear layer, shaped as train_many
    runs them. What those shapes reach is the ceiling for the whole training path."""
    import torch

    layers = [m for m in template.modules() if isinstance(m, torch.nn.Linear)]
    mats = [(torch.randn(models, batch, m.in_features), torch.randn(models, m.out_features, m.in_features),
             torch.randn(models, batch, m.out_features)) for m in layers]

    def run() -> None:
        for _ in range(steps):
            for h, w, d in mats:
                torch.bmm(h, w.transpose(1, 2))
                torch.bmm(d, w)
                torch.bmm(d.transpose(1, 2), h)

    return run, 6.0 * models * batch * steps * sum(m.weight.numel() for m in layers)


def main() -> None:
    import numpy as np
    import torch

    from bench.timing import TRAIN, forward_flops, load, profile, share, with_peak
    from core import Experiment, ExperimentConfig
    from core.attacks import AttackContext, get_attack
    from core.attacks.mia import query_sets
    from core.attacks.shadow import clear_memo, shadow_models
    from core.batched import init_many, stack, train_many
    from core.config import MethodConfig
    from core.training import train

    print("== attacks_mia: membership attacks on the default classroom experiment (digits, MLP, forget 7), "
          "target finetune ==")
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, {load()}")
    exp = Experiment(ExperimentConfig(methods=[MethodConfig("finetune")]), device="cpu")
    exp.run()
    ctx = AttackContext.from_experiment(exp)
    ctx.store = None  # timings below never read shadows from disk
    clear_memo()

    print("-- 1. attack times against finetune (LiRA first, cold: its 16 shadows are trained inside) --")
    times = {}
    for name in ATTACKS + ["lira"]:
        label = name if name not in times else f"{name} (warm)"
        res, wall, cpu = _timed(lambda: get_attack(name).run(ctx, "finetune"))
        times[label] = wall
        extra = ""
        if name == "lira" and label == "lira":
            extra = f"  (shadow training {res[0].extra['shadow_seconds']:.2f} s)"
        print(f"  {label:<18}{wall:>8.2f} s wall {cpu:>8.2f} s CPU{extra}")
    lira = times["lira"]
    print(f"  LiRA, 16 shadows, cold: {lira:.2f} s (budget {LIRA_BUDGET:.0f} s: "
          f"{'ok' if lira <= LIRA_BUDGET else 'MISS'})")

    print("-- 2. the same 16 shadow models: vectorised (train_many) vs one by one (training.train) --")
    mem, non = query_sets(ctx)
    sh = shadow_models(ctx, np.r_[mem, non], 16, None, ctx.split.retain)  # memo: the LiRA set
    seeds = [ctx.seed * 1000 + 7001 + m for m in range(16)]
    split = ctx.split
    X, y = split.tensors(np.arange(len(split.dataset)))
    template = ctx.fresh_model(0)
    recipe = ctx.recipe
    def one_by_one():
        out = []
        for s, sub in zip(seeds, sh.subsets):
            m = ctx.fresh_model(s)
            train(m, X[sub], y[sub], recipe, seed=s)
            out.append(m)
        return out

    ceiling, ceiling_flops = step_matmuls(template, len(seeds), recipe.batch_size,
                                          recipe.epochs * -(-max(len(s) for s in sh.subsets) // recipe.batch_size))
    t, peak = with_peak({"vec": lambda: train_many(template, init_many(ctx.fresh_model, seeds), X, y, sh.subsets,
                                                   recipe, seeds), "one": one_by_one, "ceiling": ceiling}, REPEATS)
    (batched, t_vec, c_vec), (singles, t_one, c_one) = ((t[k].out, t[k].best, t[k].cpu) for k in ("vec", "one"))
    ref = stack(singles)
    diff = max(float((batched[k] - ref[k]).abs().max()) for k in ref)
    Xt, _ = split.tensors("test")
    from core.batched import forward_many

    agree = float((forward_many(template, batched, Xt).argmax(-1) == forward_many(template, ref, Xt).argmax(-1))
                  .float().mean())
    samples = sum(len(s) for s in sh.subsets) * recipe.epochs
    flops = TRAIN * forward_flops(ctx.fresh_model(0), split.dataset.input_shape) * samples
    print(f"  {len(sh.subsets)} models, {np.mean([len(s) for s in sh.subsets]):.0f} samples each, "
          f"{recipe.epochs} epochs, batch {recipe.batch_size}, {recipe.optimizer}: {flops / 1e9:.0f} GFLOP in all "
          f"(forward + backward = {TRAIN:.0f} x forward); best of {REPEATS}, interleaved with each other and a "
          f"1024x1024 matmul: peak {peak / 1e9:.1f} GFLOP/s; {load()}")
    print(f"  vectorised  {t_vec:>8.2f} s wall {c_vec:>8.2f} s CPU  {share(flops, t_vec, peak)}  "
          f"[budget >= {SHARE_BUDGET:.0%}: {'ok' if flops / t_vec / peak >= SHARE_BUDGET else 'MISS'}]")
    print(f"  one by one  {t_one:>8.2f} s wall {c_one:>8.2f} s CPU  {share(flops, t_one, peak)}")
    print(f"  the same steps' batched matmuls alone (forward, input and weight gradients: no softmax, ReLU, "
          f"optimiser or data): {t['ceiling'].best:.2f} s, {share(ceiling_flops, t['ceiling'].best, peak)}: the "
          f"ceiling for these shapes")
    print("  profile of one vectorised training: " + profile(
        lambda: train_many(template, init_many(ctx.fresh_model, seeds), X, y, sh.subsets, recipe, seeds))
          .replace("\n", "\n    "))
    ratio = t_one / t_vec
    print(f"  ratio (wall) {ratio:.2f}x, (CPU) {c_one / c_vec:.2f}x (budget >= {RATIO_BUDGET:.0f}x: "
          f"{'ok' if ratio >= RATIO_BUDGET else 'MISS'}); max weight difference {diff:.2e} "
          f"(Adam amplifies rounding), test predictions agree on {agree:.1%}")

    from core.attacks.mia import sets_description

    print(f"-- 3. AUC / TPR@1%FPR ({sets_description(exp.split, len(mem), len(non))}) --")
    rows = {}
    for target in ("original", "retrain", "finetune"):
        for name in ATTACKS:
            if name == "privacy_score" and target == "retrain":
                continue
            for r in get_attack(name).run(ctx, target):
                roc = r.roc()
                extra = ""
                if "efficacy" in r.extra:
                    extra = f" efficacy {r.extra['efficacy']:.3f}"
                if "privacy" in r.extra:
                    cmp = get_attack(name, thresholds="comparator").run(ctx, target)[0].extra["privacy"]["score"]
                    extra = f" privacy score {r.extra['privacy']['score']:.3f} (Comparator's thresholds {cmp:.3f})"
                if "forget_acc_after" in r.extra and r.attack == "rea_sample":
                    extra = (f" forget acc {r.extra['forget_acc_before']:.3f} -> "
                             f"{r.extra['forget_acc_after']:.3f} after reminiscence")
                rows.setdefault(r.attack, {})[target] = f"{roc.auc:.3f}/{roc.tpr_at_1pct:.3f}{extra}"
    for attack, per in rows.items():
        print(f"  {attack:<22}" + "  ".join(f"{t}: {v}" for t, v in per.items()))


if __name__ == "__main__":
    main()
