"""Command line: `python -m core run|quality|report|list|example-data|show-config ...`.

User errors (bad config, bad data) print one line and exit with status 2; no traceback.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
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
    """`run`: "Run everything" (`core.analysis.Pipeline`) and results.json, with `--report` the HTML report too;
    `quality`: the models and the forgetting-quality score only (with its error bars)."""
    from .analysis import ANALYSES, Pipeline, analyse, cached_analysis, save, standard  # noqa: F401 (registers)
    from .cache import ModelStore
    from .config import MethodConfig, load_config
    from .experiment import Experiment

    cfg = load_config(args.config)
    if args.seed is not None:
        cfg.seed = args.seed
    if getattr(args, "methods", None) is not None:
        cfg.methods = [MethodConfig(name.strip()) for name in args.methods.split(",") if name.strip()]
    everything = args.command == "run" and not args.no_analyses
    skip = _skipped(args, ANALYSES) if everything else set()
    build_report = _report_builder() if getattr(args, "report", False) else None
    _check_out(args.out)  # a folder that cannot be written: said before anything trains
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
        skip.add("quality")  # scored below with N and the error bars asked for
    pipeline = Pipeline(cfg, store=store, exp=exp)
    run = pipeline.measure(bar)
    if everything:
        analyse(run, bar, skip=skip, trace=False)
    report = None
    if args.quality is not None:
        from .quality import quality

        report = quality(exp, n=args.quality, protocol=args.protocol, halves=args.halves, progress=bar)
    bar.done()
    if report is not None:
        run.results.sections["quality"] = report.to_dict()
    out = save(run, args.out)
    results = run.results
    print(_table(results))
    for w in results.warnings:
        print(f"\nwarning: {w}")
    verdict = cached_analysis(run, "verdict") if everything else None
    if verdict is not None:
        print()
        print(_verdict_lines(verdict))
    if report is not None:
        print()
        print(_quality_table(report))
    print(f"\nwrote {out}")
    if build_report is not None:
        print(f"wrote {build_report(run, Path(args.out) / 'report.html')}")
        save(run, args.out)  # with what the report computed (one sample's neighbourhood): `residue report` redraws it
    return _failed(run)


def _skipped(args, registry) -> set[str]:
    """The analyses `--skip` names (each checked against the registry: a typo is one line, before any work)."""
    names = {n.strip() for n in (args.skip or "").split(",") if n.strip()}
    unknown = sorted(names - set(registry))
    if unknown:
        runnable = ", ".join(n for n, a in registry.items() if a.in_run_everything)
        raise ResidueError(f"--skip: unknown analysis {', '.join(unknown)} (one of: {runnable}).")
    return names


def _failed(run) -> int:
    """0, or 2 with one line when analyses failed (results.json and the report show what exists and say why)."""
    if not run.failed:
        return 0
    from .analysis import ANALYSES

    names = ", ".join(ANALYSES[n].title if n in ANALYSES else n for n in run.failed)
    print(f"error: {len(run.failed)} analyses failed ({names}); results.json lists why, the rest is written.",
          file=sys.stderr)
    return 2


def _check_out(out: str) -> None:
    """The output folder must be writable, or creatable in a folder that is: tried with a file made and removed at
    once (root passes every permission check, a read-only mount does not), nothing left behind."""
    p = Path(out)
    target = p if p.exists() else p.parent
    if p.exists() and not p.is_dir():
        raise ResidueError(f"output folder '{out}' is a file.")
    if not target.is_dir():
        raise ResidueError(f"output folder '{out}': '{target}' is not an existing folder.")
    try:
        with tempfile.TemporaryFile(dir=target):
            pass
    except OSError as e:
        raise ResidueError(f"output folder '{out}' is not writable ({e.strerror or e}).") from None


def _report_builder():
    """The dashboard's report builder (`dashboard.report.write`): the figures are the dashboard's pure figure
    functions, a layer above the engine, so `core` reaches it by name only here, when a report is asked for
    (the engine never imports it; `lint-imports` checks that)."""
    import importlib

    try:
        return importlib.import_module("dashboard.report").write
    except ImportError as e:
        raise ResidueError(f"--report needs the dashboard package (plotly, streamlit): {e}.") from None


def _cmd_report(args) -> int:
    """`report DIR`: the HTML report drawn again from a saved results folder (no model is loaded)."""
    from .analysis import load, standard  # noqa: F401  (registers the analyses the saved results name)

    build_report = _report_builder()
    run = load(args.folder)
    out = Path(args.out) if args.out else Path(args.folder) / "report.html"
    _check_out(str(out.parent))
    print(f"wrote {build_report(run, out)}")
    return _failed(run)


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


def _verdict_lines(report) -> str:
    """Each judged model's verdict with the measures that decided it (the first two), and this run's controls."""
    if report.warning:
        return f"verdict: none ({report.warning})"
    rows = ["verdict (each model against retrains with other seeds; every measure is in results.json and the "
            "report):"]
    for name, v in [*report.verdicts.items(), *report.control_verdicts.items()]:
        shown = [e.text() for e in v.evidence if e.key in v.decided_by][:2]
        more = len(v.decided_by) - len(shown)
        why = "; ".join(shown) + (f"; and {more} more" if more > 0 else "")
        rows.append(f"  {name:<30} {v.badge}" + (f": {why}" if why else ""))
    passed, total = report.controls_passed()
    rows.append(f"  this run's controls, judged by the same rule: {passed} of {total} as expected"
                + "".join(f"; {c.name} is {c.label}, expected {c.expected}" for c in report.controls
                          if not c.passed))
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


def _cmd_example_data(args) -> int:
    """`example-data NAME DIR`: a tiny example of the files a loader reads, so a user sees the layout it expects,
    and the config lines that load it."""
    import json

    from .data.base import write_example

    options = write_example(args.name, args.folder)
    folder = Path(args.folder).resolve()
    files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    print(f"wrote the {args.name} example to {folder}:")
    print("\n".join(f"  {f}" for f in files))
    print("\nwith that folder inside the data directory ($RESIDUE_DATA), a config loads it with:")
    print(f'[data]\nname = "{args.name}"\n\n[data.options]')
    print("\n".join(f"{k} = {json.dumps(v)}" for k, v in options.items()))
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
    r = sub.add_parser("run", help="run one experiment and every analysis (\"Run everything\"); write results.json "
                       "(and with --report the HTML report)")
    r.add_argument("--config", required=True, help="experiment TOML (see examples/classroom.toml)")
    r.add_argument("--out", default="out", help="folder for results.json, analyses.pkl and report.html (default: out)")
    r.add_argument("--report", action="store_true", help="also write OUT/report.html, the dashboard's self-contained "
                   "report (figures, verdicts, settings; opens offline)")
    r.add_argument("--skip", default=None, metavar="A,B", help="analyses to leave out (e.g. quality,embedding; "
                   "'residue list' names them)")
    r.add_argument("--no-analyses", action="store_true", help="models and output-level results only (the fastest)")
    r.add_argument("--seed", type=int, default=None, help="override the config's seed")
    r.add_argument("--cache", default=None, help="model cache folder (default: $RESIDUE_CACHE or ~/.cache/residue)")
    r.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    r.add_argument("--quiet", action="store_true", help="no progress bar")
    r.add_argument("--checkpoint", default=None, metavar="PATH",
                   help="θ_o from a state dict of the config's model (torch.save(model.state_dict(), PATH); a "
                        "torchvision resnet18 or the Comparator's CIFAR ResNet-18, with or without a module./model. "
                        "prefix) instead of training it; loaded with weights_only=True and shape-checked")
    r.add_argument("--quality", type=int, default=None, metavar="N",
                   help="score forgetting quality (NeurIPS 2023 competition metric) with N models per pool and "
                        "error bars (--halves), instead of the analysis' default")
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
    rp = sub.add_parser("report", help="write the HTML report again from a results folder (no model is loaded)")
    rp.add_argument("folder", help="a folder written by 'run'")
    rp.add_argument("--out", default=None, help="the report file (default: FOLDER/report.html)")
    rp.set_defaults(fn=_cmd_report)
    ls = sub.add_parser("list", help="list datasets, models, unlearning methods (with hyperparameters), attacks")
    ls.set_defaults(fn=_cmd_list)
    ex = sub.add_parser("example-data", help="write a tiny example of the files a dataset loader reads (npz, csv, "
                        "cifar10, mnist, image_folder...) into DIR, to see the layout it expects")
    ex.add_argument("name", help="a dataset that reads files ('list' names the datasets)")
    ex.add_argument("folder", metavar="DIR", help="the folder to write into (created)")
    ex.set_defaults(fn=_cmd_example_data)
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
