"""Command line: `python -m core run|list|show-config ...`.

User errors (bad config, bad data) print one line and exit with status 2; no traceback.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .errors import Cancelled, ResidueError


class Bar:
    """A one-line progress bar on stderr, fed by engine progress events."""

    def __init__(self, stream=sys.stderr, quiet: bool = False):
        self.stream, self.quiet, self.start = stream, quiet, time.perf_counter()
        self.tty = hasattr(stream, "isatty") and stream.isatty()
        self.stage = None

    def __call__(self, e) -> None:
        if self.quiet:
            return
        if not self.tty:  # logs: one line per stage, no carriage-return animation
            if e.stage != self.stage:
                self.stage = e.stage
                self.stream.write(f"{time.perf_counter() - self.start:6.1f}s  {e.stage}\n")
            return
        width = 24
        filled = int(width * e.fraction)
        metric = " ".join(f"{k}={v:.3g}" for k, v in list(e.metrics.items())[:2])
        line = (f"\r[{'#' * filled}{'.' * (width - filled)}] {e.stage[:34]:<34} {e.step}/{e.total} {metric:<28}"
                f" {time.perf_counter() - self.start:5.1f}s")
        self.stream.write(line)
        self.stream.flush()

    def done(self) -> None:
        if not self.quiet and self.tty:
            self.stream.write("\n")


def _cmd_run(args) -> int:
    """`run`, and `quality` (a run whose results.json also holds the forgetting-quality section)."""
    from .cache import ModelStore
    from .config import MethodConfig, load_config
    from .experiment import Experiment

    cfg = load_config(args.config)
    if args.seed is not None:
        cfg.seed = args.seed
    if getattr(args, "methods", None) is not None:
        cfg.methods = [MethodConfig(name.strip()) for name in args.methods.split(",") if name.strip()]
    report = None
    out = Path(args.out)
    store = ModelStore(args.cache) if args.cache else ModelStore()
    bar = Bar(quiet=args.quiet)
    if getattr(args, "checkpoint", None):  # θ_o from a file: the dashboard's upload, from the command line
        from .experiment import CheckpointExperiment

        exp = CheckpointExperiment.from_file(cfg, args.checkpoint, store=store, device=args.device)
    else:
        exp = Experiment(cfg, store=store, device=args.device)
    if args.quality is not None:  # bad N, protocol or forget set: said before anything trains
        from .quality.pools import check

        check(exp, None, args.quality, args.protocol, args.halves)
    results = exp.run(bar)
    if args.quality is not None:
        from .quality import quality

        report = quality(exp, n=args.quality, protocol=args.protocol, halves=args.halves, progress=bar)
        results.sections["quality"] = report.to_dict()
    bar.done()
    try:
        out.mkdir(parents=True, exist_ok=True)
        results.to_json(out / "results.json")
    except OSError as e:
        raise ResidueError(f"cannot write results to '{out}': {e.strerror or e}.") from None
    print(_table(results))
    for w in results.warnings:
        print(f"\nwarning: {w}")
    if report is not None:
        print()
        print(_quality_table(report))
    print(f"\nwrote {out / 'results.json'}")
    return 0


def _quality_table(report) -> str:
    e = len(report.forget_indices)
    head = f"{'compared with the retrain pool':<32}{'F':>7}{'±':>7}{'final':>8}{'forget acc':>12}{'models':>8}"
    rows = [f"forgetting quality: protocol {report.protocol}, N = {report.n} models per pool, {e} forget examples",
            head, "-" * len(head)]
    notes = []
    for r in report.rows():
        def num(v) -> str:
            return "-" if v is None or v != v else f"{v:.3f}"

        ok = report.n - r["failed"]
        rows.append(f"{r['model']:<32}{num(r['F']):>7}{num(r['±']):>7}{num(r['final']):>8}{num(r['forget acc']):>12}"
                    f"{f'{ok}/{report.n}':>8}")
        if r["note"]:
            notes.append(f"{r['model']}: {r['note']}")
    for key, m in report.methods.items():
        notes += [f"{key}: {line}" for line in m.pool.failed]
    return "\n".join(rows + notes + report.notes)


def _table(results) -> str:
    head = f"{'model':<20}{'forget':>8}{'retain':>8}{'test':>8}{'seconds':>9}{'x retrain':>10}{'KL→θr':>9}  status"
    rows = [head, "-" * len(head)]
    for m in results.models:
        ratio = f"{m.ratio_to_retrain:.3f}" if m.ratio_to_retrain is not None else "-"
        kl = f"{m.kl_to_retrain:.3f}" if m.kl_to_retrain is not None else "-"
        rows.append(f"{m.name:<20}{m.forget_acc:>8.3f}{m.retain_acc:>8.3f}{m.test_acc:>8.3f}{m.seconds:>9.2f}"
                    f"{ratio:>10}{kl:>9}  {m.status}{' (cached)' if m.cached else ''}")
    return "\n".join(rows)


def _cmd_list(args) -> int:
    from .data import datasets
    from .models import models
    from .unlearn import methods

    print("datasets:", ", ".join(datasets.names()))
    print("models:  ", ", ".join(models.names()))
    print("methods:")
    for name in methods.names():
        cls = methods.get(name)
        print(f"  {name:<18} {cls.summary}")
        for p in cls.params:
            rng = f"[{p.low}, {p.high}]" if p.low is not None else (str(list(p.choices)) if p.choices else "")
            print(f"      {p.name:<14} default {p.default!r:<10} {rng:<18} {p.help}")
    try:
        from .attacks import attacks

        print("attacks: ", ", ".join(attacks.names()))
    except ImportError:  # pragma: no cover
        pass
    return 0


def _cmd_show(args) -> int:
    from .config import ExperimentConfig, dumps, load_config

    print(dumps(load_config(args.config) if args.config else ExperimentConfig()))
    return 0


def _quality_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--protocol", default="A", help="A: N unlearning runs from one θ_o, differing in their seed "
                   "(as the competition ran it; default); B: run i starts from θ_o of seed i")
    p.add_argument("--halves", type=int, default=8, help="half-samples for the error bars (default 8; 0: none)")


class _Parser(argparse.ArgumentParser):
    """Bad arguments get one line and exit status 2, like every other bad input."""

    def error(self, message: str):
        self.exit(2, f"error: {message} (see '{self.prog} --help').\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m core", description="Residue: run machine-unlearning experiments "
                                "and measure what approximate unlearning leaves behind.")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="run one experiment and write results.json")
    r.add_argument("--config", required=True, help="experiment TOML (see examples/classroom.toml)")
    r.add_argument("--out", default="out", help="folder for results.json (default: out)")
    r.add_argument("--seed", type=int, default=None, help="override the config's seed")
    r.add_argument("--cache", default=None, help="model cache folder (default: $RESIDUE_CACHE or ~/.cache/residue)")
    r.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    r.add_argument("--quiet", action="store_true", help="no progress bar")
    r.add_argument("--checkpoint", default=None, metavar="PATH",
                   help="θ_o from a state dict of the config's model (torch.save(model.state_dict(), PATH); a "
                        "torchvision resnet18 or the Comparator's CIFAR ResNet-18, with or without a module./model. "
                        "prefix) instead of training it; loaded with weights_only=True and shape-checked")
    r.add_argument("--quality", type=int, default=None, metavar="N",
                   help="also score forgetting quality (NeurIPS 2023 competition metric) with N models per pool")
    _quality_options(r)
    r.set_defaults(fn=_cmd_run)
    q = sub.add_parser("quality", help="run, then score each method's forgetting quality as the NeurIPS 2023 "
                       "unlearning competition does (N unlearning runs vs N retrains, with ceiling and floor)")
    q.add_argument("--config", required=True, help="experiment TOML (see assets/presets/forget_digit_7.toml)")
    q.add_argument("--methods", default=None, help="comma-separated method names (default: the config's methods)")
    q.add_argument("--n", dest="quality", type=int, default=32, metavar="N",
                   help="models per pool (default 32; F is only comparable at equal N)")
    q.add_argument("--out", default="out", help="folder for results.json (default: out)")
    q.add_argument("--seed", type=int, default=None, help="override the config's seed")
    q.add_argument("--cache", default=None, help="model cache folder (default: $RESIDUE_CACHE or ~/.cache/residue)")
    q.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    q.add_argument("--quiet", action="store_true", help="no progress bar")
    _quality_options(q)
    q.set_defaults(fn=_cmd_run)
    ls = sub.add_parser("list", help="list datasets, models, unlearning methods (with hyperparameters), attacks")
    ls.set_defaults(fn=_cmd_list)
    sc = sub.add_parser("show-config", help="print a config (default, or --config FILE) as resolved TOML")
    sc.add_argument("--config", default=None)
    sc.set_defaults(fn=_cmd_show)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.fn(args)
    except ResidueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except Cancelled:
        print("cancelled", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
