"""Loss landscape against a peer (issue 24): Residue's grid evaluation beside the `loss-landscapes` package and
a plain per-point torch loop, on the same grid, at every preset's model size and two larger ones.

`python bench/landscape.py` (or `python bench/run.py --only landscape`). For each model (the MLP of the two
digits presets, 4 hidden layers of 128, 59,146 parameters, with their own forget sets; the moons preset's MLP;
a deeper MLP with 4 hidden layers of 256; the small CNN), on D_f plus the whole retain set, with 1 and 2 threads:

* the plane θ_o + a·(θ_u − θ_o) + b·(θ_r − θ_o) on the peer's own 31×31 grid (`planar_interpolation`), forget and
  retain loss per point, by: Residue's `Evaluator` as `model_plane` runs it (its rule picks per-point or
  batched), Residue with the other choice forced (to check the rule), the peer, and a plain loop
  (`vector_to_parameters`, one forward of all samples per point);
* for the default model, the 1-D line θ_o → θ_u at the peer's 31 points (`linear_interpolation`).

All contenders are timed alike: best of the same N runs, interleaved with each other and with a 1024×1024
float32 matmul whose best gives the run's peak; each time is also given as achieved FLOP/s (the peer's
forward FLOPs: samples × points × FLOPs per sample) as a share of that peak. Values are checked against
the peer (max |difference|). Budget: Residue no slower than the faster of the peer and the plain loop on
the 31×31 plane, one and two threads. `pip install loss-landscapes` (the `bench` extra) for the peer;
without it the plain loop stands in. The CNN and the deep MLP use a 15×15 grid to keep the run short.
"""
from __future__ import annotations

import copy
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.timing import forward_flops, load, paired, share, with_peak  # noqa: E402

GRID = 31


def _cases():
    """(label, config dict, grid) for each model size."""
    presets = ROOT / "assets" / "presets"
    digits = tomllib.loads((presets / "forget_digit_7.toml").read_text())
    return [
        ("digits MLP 4x128, forget 7 (preset)", digits, GRID),
        ("digits MLP 4x128, random 10% (preset)", tomllib.loads((presets / "forget_random_10pct.toml").read_text()),
         GRID),
        ("moons MLP 4x64 (preset)", tomllib.loads((presets / "moons_neighbourhood.toml").read_text()), GRID),
        ("digits MLP 4x256 (deeper)", {**digits, "model": {"name": "mlp", "hidden": [256] * 4}}, 15),
        ("digits CNN 16-32-64", {**digits, "model": {"name": "cnn"}}, 15),
    ]


def _models(config: dict):
    from core import Experiment
    from core.config import from_dict
    from core.probes import ProbeData

    exp = Experiment(from_dict({**config, "methods": [{"name": "finetune"}]}), device="cpu")
    exp.run()
    data = ProbeData.from_experiment(exp)
    return exp, data


def peer_plane(model, end1, end2, X, y, n_forget: int, steps: int):
    """The peer's `planar_interpolation`, forget and retain loss per point from one forward of all samples."""
    import loss_landscapes as ll
    import torch
    import torch.nn.functional as F
    from loss_landscapes.metrics import Metric

    class Losses(Metric):
        def __call__(self, wrapper):
            ce = F.cross_entropy(wrapper.forward(X), y, reduction="none")
            return float(ce[:n_forget].mean()), float(ce[n_forget:].mean())

    with torch.no_grad():
        return ll.planar_interpolation(model, end1, end2, Losses(), steps=steps, deepcopy_model=True).reshape(-1, 2)


def peer_line(model, end, X, y, n_forget: int, steps: int):
    import loss_landscapes as ll
    import torch
    import torch.nn.functional as F
    from loss_landscapes.metrics import Metric

    class Losses(Metric):
        def __call__(self, wrapper):
            ce = F.cross_entropy(wrapper.forward(X), y, reduction="none")
            return float(ce[:n_forget].mean()), float(ce[n_forget:].mean())

    with torch.no_grad():
        return ll.linear_interpolation(model, end, Losses(), steps=steps, deepcopy_model=True).reshape(-1, 2)


def plain_loop(model, center, dirs, coords, X, y, n_forget: int):
    """The plain per-point torch loop: write the point's parameters into the model, one forward of all samples."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    model = copy.deepcopy(model)
    params = list(model.parameters())
    out = []
    with torch.no_grad():
        for c in torch.as_tensor(coords, dtype=torch.float32):
            torch.nn.utils.vector_to_parameters(center + c @ dirs, params)
            ce = F.cross_entropy(model(X), y, reduction="none")
            out.append((float(ce[:n_forget].mean()), float(ce[n_forget:].mean())))
    return np.asarray(out)


def _ours(L, o, sets, center, dirs, coords, batch_below=None):
    """Residue's grid evaluation as `model_plane` runs it; `batch_below` overrides the batching rule."""
    import numpy as np

    saved = L.BATCH_BELOW
    if batch_below is not None:
        L.BATCH_BELOW = batch_below
    try:
        res = L.Evaluator(o, sets).evaluate(center, dirs, coords)
    finally:
        L.BATCH_BELOW = saved
    return np.stack([res["forget"], res["retain"]], 1)


def main(argv: list[str] | None = None) -> None:
    import argparse

    import numpy as np
    import torch

    ap = argparse.ArgumentParser(description="Residue's landscape beside loss-landscapes and a plain loop.")
    ap.add_argument("--cases", default="", help="only the models whose label contains one of these (comma-separated)")
    ap.add_argument("--threads", default="1,2", help="thread counts to time (comma-separated)")
    ap.add_argument("--repeats", type=int, default=0, help="best of this many runs (default 5, or 3 for big grids)")
    args = ap.parse_args(argv if argv is not None else sys.argv[1:] if __name__ == "__main__" else [])
    wanted = [c for c in args.cases.split(",") if c]

    from core.probes import landscape as L

    try:
        import loss_landscapes  # noqa: F401
        have_peer = True
    except ImportError:
        have_peer = False
    print("== landscape: Residue's grid evaluation beside the loss-landscapes package and a plain loop ==")
    print(f"torch {torch.__version__}; peer: {'loss-landscapes installed' if have_peer else 'loss-landscapes NOT installed (pip install loss-landscapes): the plain loop stands in'}")
    threads0 = torch.get_num_threads()
    misses = []
    for label, config, steps in _cases():
        if wanted and not any(w in label for w in wanted):
            continue
        exp, data = _models(config)
        o, u, r = (exp.models[k] for k in ("original", "finetune", "retrain"))
        sets = L._sets(data, full_retain=True)
        X, y = torch.cat([sets["forget"][0], sets["retain"][0]]), torch.cat([sets["forget"][1], sets["retain"][1]])
        nf = len(sets["forget"][1])
        fo, fu, fr = (L.flat_params(m) for m in (o, u, r))
        dirs = torch.stack([fu - fo, fr - fo])
        # the peer's grid: column i is a = i/steps; even columns step b = 1..steps, odd ones 0..steps-1
        ii, jj = np.meshgrid(np.arange(steps), np.arange(steps), indexing="ij")
        coords = np.stack([ii.ravel() / steps, (jj + (ii % 2 == 0)).ravel() / steps], 1)
        flops = forward_flops(o, tuple(X.shape[1:])) * len(y) * len(coords)
        ev = L.Evaluator(o, sets)
        rule = "batched" if ev.batches() else "per point"
        print(f"-- {label}: {sum(p.numel() for p in o.parameters()):,} parameters, {nf} forget + {len(y) - nf} "
              f"retain samples, {steps}x{steps} plane, {flops / 1e9:.1f} GFLOP (peer's count); rule: {rule} --")
        for threads in (int(x) for x in args.threads.split(",")):
            torch.set_num_threads(threads)
            fns = {"Residue": lambda: _ours(L, o, sets, fo, dirs, coords),
                   "Residue, other choice": lambda: _ours(L, o, sets, fo, dirs, coords, 0 if ev.batches() else 10**15),
                   "plain loop": lambda: plain_loop(o, fo, dirs, coords, X, y, nf)}
            if have_peer:
                fns["loss-landscapes"] = lambda: peer_plane(o, u, r, X, y, nf, steps)
            repeats = args.repeats or (5 if steps == GRID and len(y) * len(fo) < 2e8 else 3)
            t, peak = with_peak(fns, repeats)
            ref = t["loss-landscapes" if have_peer else "plain loop"].out
            err = max(float(np.abs(v.out - ref).max()) for v in t.values())
            rival = min((k for k in t if k in ("loss-landscapes", "plain loop")), key=lambda k: t[k].best)
            ratio = t["Residue"].best / t[rival].best
            ok = ratio <= 1.0
            if not ok:
                misses.append(f"{label}, {threads} thread(s)")
            print(f"  {threads} thread(s), best of {repeats} interleaved, matmul peak {peak / 1e9:.1f} GFLOP/s, {load()}")
            for k, v in t.items():
                print(f"    {k:<24}{v.best:>8.3f} s  {share(flops, v.best, peak)}")
            print(f"    Residue / faster rival ({rival}): {ratio:.2f} best to best, {paired(t['Residue'], t[rival]):.2f} "
                  f"median of the rounds' ratios  [budget <= 1: {'ok' if ok else 'MISS'}]; "
                  f"max |difference| from {'the peer' if have_peer else 'the loop'} {err:.1e}")
        torch.set_num_threads(threads0)
        if label.startswith("digits MLP 4x128, forget 7"):
            line = np.arange(1, GRID + 1)[:, None] / GRID
            fns = {"Residue": lambda: _ours(L, o, sets, fo, (fu - fo)[None], line),
                   "plain loop": lambda: plain_loop(o, fo, (fu - fo)[None], line, X, y, nf)}
            if have_peer:
                fns["loss-landscapes"] = lambda: peer_line(o, u, X, y, nf, GRID)
            t, peak = with_peak(fns, 7)
            lflops = flops / len(coords) * GRID
            print(f"  1-D line θ_o → θ_u, {GRID} points, {threads0} threads, best of 7 interleaved, "
                  f"matmul peak {peak / 1e9:.1f} GFLOP/s")
            for k, v in t.items():
                print(f"    {k:<24}{v.best:>8.3f} s  {share(lflops, v.best, peak)}")
    print(f"landscape budget (no slower than the faster rival, 1 and 2 threads): "
          f"{'ok everywhere' if not misses else 'MISS: ' + '; '.join(misses)}")


if __name__ == "__main__":
    main()
