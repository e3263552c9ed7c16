"""Science report (issue 8): do the seed papers' findings hold, in direction, on the data Residue can run?

    python bench/science.py                   # full sweep, 3 seeds, writes reports/science.md + figures
    python bench/science.py --quick           # tiny grid (1 seed, few epochs/shadows), about a minute
    python bench/science.py --render-only     # rewrite the report from reports/science.json (no training)
    python bench/science.py --workers 2 --backend {local,dask,ray}   # fan the jobs out (core.sweep)
    python bench/science.py --grid paper --data-root DIR   # the papers' setting: CIFAR-10, ResNet-18, on a GPU;
                                                           # writes reports/paper/science.md (exit 2: no data)

One job = one scenario x one seed (scenarios: digits forget class 7, digits forget a random 10%, 2-D moons
forget 30 random points; the configs are the presets in assets/presets with the seed and methods replaced).
Every job trains θ_o, θ_r and every unlearning method (models cached under --cache), then measures:

1. unlearning quality: UA = 1 - forget accuracy, RA, TA, MIA-efficacy, time / retrain, verdict;
2. Chen et al.'s unlearning leak (sample-wise scenarios): AUC of each feature and of basic_mia; single
   deletion (K single-sample retrains as targets) and group deletion (the scenario's forget set), for retrain
   and a few approximate methods; mitigations (top-k, label only, temperature);
3. ReA: class-wise relearning attack or sample-wise reminisce-then-LiRA against the best prior attack
   (threshold MIAs, Shokri's shadow MIA, LiRA online/offline) on the same target;
4. RURK residual knowledge: r_τ and the share of forget samples with residual knowledge across radii;
5. pseudo-convergence: output-level vs residual-level distance to θ_r, each against the retrain spread;
6. the NeurIPS 2023 unlearning competition's forgetting quality F (issue 23): N runs of each method against N
   retrains, per forget example, between a second pool of retrains (ceiling) and θ_o's seeds (floor).

This file is the command line only (arguments, the sweep through core.sweep, science.json); the jobs, their typed
record, the aggregation over seeds and the report text live in bench/science_lib (see its __init__).

The report states each paper's claim and, computed from the numbers, whether ours agree in direction.
Nothing here is tuned to agree: every method and attack runs with its registered defaults unless the grid
below says otherwise (fewer shadows / draws, to fit the 30-minute budget on 2 cores), and the grid is
printed in the report.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.science_lib.grid import PRESETS, TITLES, Grid, use_grid  # noqa: E402 - after the path is set
from bench.science_lib.jobs import run_job  # noqa: E402
from bench.science_lib.record import JobRecord  # noqa: E402
from bench.science_lib.report import _git, render  # noqa: E402


def machine(threads: int, paper: bool = False) -> str:
    import torch

    gpu = paper and torch.cuda.is_available()
    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__} "
            f"({threads} thread(s) per job), Python {platform.python_version()}, device "
            f"{torch.cuda.get_device_name() if gpu else 'cpu'}")


def paper_data(root: str | None) -> str:
    """The data folder the paper grid reads (CIFAR-10's binary files, found as the engine finds them), or exit 2
    saying what is missing."""
    if not root:
        print("error: --grid paper needs --data-root DIR, a folder holding cifar-10-batches-bin (CIFAR-10's binary "
              "version: data_batch_1.bin ... data_batch_5.bin, test_batch.bin); Residue never downloads data.",
              file=sys.stderr)
        sys.exit(2)
    from core.data.images import CIFAR10_FILES, _find, _folder
    from core.errors import ResidueError

    path = Path(root).expanduser().resolve()
    if not path.is_dir():
        print(f"error: --data-root '{root}' is not a folder (it should hold cifar-10-batches-bin).", file=sys.stderr)
        sys.exit(2)
    os.environ["RESIDUE_DATA"] = str(path)
    try:
        _find("cifar10", _folder("cifar10", None), CIFAR10_FILES)
    except ResidueError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    return str(path)


def saved(raw: Path) -> tuple[dict, list[JobRecord]]:
    """The metadata and the jobs' records of a science.json, or exit 2 saying what is wrong with it."""
    from core.errors import ResidueError

    try:
        data = json.loads(raw.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or not isinstance(data.get("meta"), dict) or "results" not in data:
            raise ResidueError("it holds no 'meta' and 'results'")
        missing = [k for k in ("command", "grid", "commit", "date", "machine", "wall", "backend", "workers",
                               "cache", "cached") if k not in data["meta"]]
        if missing:
            raise ResidueError(f"its 'meta' lacks {', '.join(map(repr, missing))}")
        return data["meta"], [JobRecord.from_dict(r) for r in data["results"]]
    except OSError as e:
        problem = f"cannot be read ({e.strerror or e})"
    except json.JSONDecodeError as e:
        problem = f"is not JSON ({e.msg}, line {e.lineno})"
    except ResidueError as e:
        problem = str(e)
    print(f"error: {raw}: {problem}; --render-only needs the science.json a sweep wrote there.", file=sys.stderr)
    sys.exit(2)


def main(argv: list[str] | None = None) -> Path:
    from core.sweep import BACKENDS, run_jobs

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="tiny grid (1 seed, few epochs and shadows)")
    ap.add_argument("--grid", default=None, choices=("full", "quick", "paper"),
                    help="full (default), quick (= --quick) or paper: CIFAR-10 / ResNet-18 with the papers' recipes, "
                         "on a GPU, written to reports/paper/")
    ap.add_argument("--data-root", default=None, help="paper grid: the folder holding cifar-10-batches-bin")
    ap.add_argument("--out", default=None, help="report folder (default: reports/, reports/paper/ for --grid paper)")
    ap.add_argument("--cache", default=None, help="model cache (default: .residue-cache/science[-quick])")
    ap.add_argument("--seeds", default="", help="comma-separated seeds (default: the grid's)")
    ap.add_argument("--scenarios", default="", help=f"comma-separated subset of {', '.join(PRESETS)}")
    ap.add_argument("--backend", default="local", choices=BACKENDS, help="where jobs run (dask/ray: optional)")
    ap.add_argument("--workers", type=int, default=1, help="parallel jobs (local: processes)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per job (1: best on a shared CPU)")
    ap.add_argument("--figures", default="auto", choices=("auto", "png", "html", "none"))
    ap.add_argument("--render-only", action="store_true", help="rewrite the report from <out>/science.json")
    args = ap.parse_args(argv)
    name = args.grid or ("quick" if args.quick else "full")
    out = Path(args.out or (ROOT / "reports" / "paper" if name == "paper" else ROOT / "reports"))
    data_root = paper_data(args.data_root) if name == "paper" and not args.render_only else None
    out.mkdir(parents=True, exist_ok=True)
    raw = out / "science.json"
    if args.render_only:
        meta, records = saved(raw)
        commit = _git("rev-parse", "--short", "HEAD")
        if commit != meta["commit"]:
            meta["rendered"] = commit
        path = render(meta, records, out, args.figures)
        print(f"report rewritten: {path}")
        return path
    grid = {"quick": Grid.quick, "full": Grid.full, "paper": Grid.paper}[name]()
    use_grid(name)
    if args.seeds:
        grid = replace(grid, seeds=[int(s) for s in args.seeds.split(",")])
    if args.scenarios:
        grid = replace(grid, scenarios=[s for s in args.scenarios.split(",") if s])
    unknown = set(grid.scenarios) - set(PRESETS)
    if unknown:
        ap.error(f"unknown scenario {sorted(unknown)[0]!r}; known: {', '.join(PRESETS)}")
    cache = Path(args.cache or ROOT / ".residue-cache" / f"science{'' if name == 'full' else '-' + name}")
    cached_before = cache.exists() and any(cache.rglob("*.pt"))
    specs = [{"scenario": sc, "seed": s, "grid": asdict(grid), "cache": str(cache), "threads": args.threads,
              "data_root": data_root} for s in grid.seeds for sc in grid.scenarios]
    start = time.perf_counter()
    print(f"science: {len(specs)} jobs ({grid.name} grid), backend {args.backend}, {args.workers} worker(s), "
          f"cache {cache}", flush=True)

    def done(i: int, r: dict) -> None:
        print(f"  [{time.perf_counter() - start:6.0f} s] {TITLES[r['scenario']]}, seed {r['seed']}: "
              f"{r['seconds']['total']:.0f} s", flush=True)

    records = [JobRecord.from_dict(r) for r in run_jobs(run_job, specs, args.backend, args.workers, done)]
    wall = time.perf_counter() - start
    cmd = "python bench/science.py" + (" " + " ".join(argv if argv is not None else sys.argv[1:])).rstrip()
    meta = {"command": cmd.strip(), "grid": asdict(grid), "commit": _git("rev-parse", "--short", "HEAD"),
            "dirty": bool(_git("status", "--porcelain", "--", "bench/science.py", "core")),
            "date": time.strftime("%Y-%m-%d %H:%M %Z"), "machine": machine(args.threads, name == "paper"), "wall": wall,
            "backend": args.backend, "workers": args.workers,
            "cache": str(cache.relative_to(ROOT)) if cache.is_relative_to(ROOT) else str(cache),
            "cached": "some models cached before the run" if cached_before else "empty at start: every model trained"}
    raw.write_text(json.dumps({"meta": meta, "results": [r.to_dict() for r in records]}, default=float),
                   encoding="utf-8")
    path = render(meta, records, out, args.figures)
    print(f"science: report {path} ({wall:.0f} s)")
    return path


if __name__ == "__main__":
    main()
