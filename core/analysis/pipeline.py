""""Run everything": the experiment (θ_o, θ_r, every method), then every analysis registered for it, with
progress events and cancellation, then JSON-able summaries. The dashboard's job, the command line and anything
scripted call this one pipeline; none keeps its own list of analyses.

    run = Pipeline(config, store=ModelStore()).run(progress)     # a core.analysis.Run
    save(run, "out")                                              # out/results.json + out/analyses.pkl
    run = load("out")                                             # read back (nothing recomputed)

A results folder holds `results.json` (the output-level results, every analysis' summary, the verdicts, what
failed) and `analyses.pkl` (the analyses themselves, checksummed, read back with `core.cache`'s safe unpickler),
so a report can be drawn again from it without a model.
"""
from __future__ import annotations

import hashlib
import json
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..cache import ModelStore, dump_result, load_result, run_key
from ..config import ExperimentConfig, from_dict
from ..data import Dataset
from ..errors import Cancelled, ResidueError
from ..experiment import CheckpointExperiment, Experiment
from ..progress import Progress, as_progress
from ..results import Results
from .base import ANALYSES, Analysis, EngineMissing, Run, analysis, cached_analysis

FORMAT = 1  # of a results folder; a folder written by an older version (or none) is refused, not misread
ANALYSES_FILE = "analyses.pkl"
_HEADER = 64  # hex SHA-256 of the payload, then the payload (as the model store writes its entries)


@dataclass
class Pipeline:
    """One "Run everything": what to run it on, and the steps (`measure`, `analyse`) for callers that interleave
    their own work (the dashboard publishes the run between them, so pages fill in while the analyses go on).

    `checkpoint`: θ_o as (state dict, fingerprint) instead of training it; `exp`: an experiment made elsewhere
    (the command line's `--checkpoint` file)."""

    config: ExperimentConfig
    store: ModelStore | None = None
    dataset: Dataset | None = None
    data_label: str = ""
    data_fp: str | None = None
    checkpoint: tuple[dict, str] | None = None
    device: str | None = None
    exp: Experiment | None = None

    @property
    def key(self) -> str:
        ckpt = self.checkpoint[1] if self.checkpoint else getattr(self.exp, "_ckpt_fp", None)
        return run_key(self.config, self.data_fp, ckpt)

    def experiment(self) -> Experiment:
        if self.exp is None:
            kw = {"store": self.store, "dataset": self.dataset, "device": self.device}
            self.exp = (CheckpointExperiment(self.config, *self.checkpoint, **kw) if self.checkpoint is not None
                        else Experiment(self.config, **kw))
        return self.exp

    def measure(self, progress: Progress | None = None) -> Run:
        """θ_o, θ_r and every method, trained (or from the model cache) and measured at the output."""
        start = time.perf_counter()
        exp = self.experiment()
        results = exp.run(as_progress(progress))
        return Run(self.key, self.config, exp, results, self.data_label or self.config.data.name,
                   time.perf_counter() - start)

    def run(self, progress: Progress | None = None, warm: Callable[[Run], None] | None = None) -> Run:
        """The whole pipeline: `measure`, then `analyse`."""
        progress = as_progress(progress)
        start = time.perf_counter()
        run = self.measure(progress)
        analyse(run, progress, warm=warm)
        run.seconds = time.perf_counter() - start
        return run


def pending(run: Run, skip: set[str] | frozenset = frozenset()) -> list[Analysis]:
    """The analyses "Run everything" still has to compute for this run (registration order), but `skip`."""
    return [a for a in ANALYSES.values() if a.in_run_everything and a.name not in skip and a.available()
            and (a.applies is None or a.applies(run))
            and cached_analysis(run, a.name) is None and a.name not in run.failed]


def analyse(run: Run, progress: Progress | None = None, warm: Callable[[Run], None] | None = None,
            on_start: Callable[[list[Analysis]], None] | None = None,
            on_done: Callable[[Analysis], None] | None = None, skip: set[str] | frozenset = frozenset(),
            trace: bool = True) -> Run:
    """Every analysis of "Run everything" with its default settings; one that fails is recorded in `run.failed`
    (one line) and the others go on. Then `warm(run)` (the dashboard builds its first pages' figures there), then
    the JSON-able summaries in `run.results.sections`. Stop (`Cancelled`) goes through at once. `skip`: analyses
    left out (the command line's --skip); `trace`: print an unexpected error's traceback (the server log) besides
    its line in `run.failed` (the command line says one line only)."""
    progress = as_progress(progress)
    run.skipped.update(skip)
    todo = pending(run, skip)
    if on_start is not None:
        on_start(todo)
    for i, a in enumerate(todo):
        progress(f"analysis: {a.title}", i, len(todo))
        try:
            analysis(run, a.name, progress.scoped(f"analysis: {a.title}"))
        except (Cancelled, EngineMissing):
            raise
        except ResidueError as e:
            run.failed[a.name] = str(e)
        except Exception as e:  # noqa: BLE001 - one analysis failing must not take the others down
            if trace:
                traceback.print_exc()
            run.failed[a.name] = f"{a.title} failed: {type(e).__name__}: {e}"
        if on_done is not None:
            on_done(a)
    if warm is not None:
        progress("drawing the figures", 1, 1)
        try:
            warm(run)
        except (Cancelled, EngineMissing):
            raise
        except Exception:  # noqa: BLE001 - a view that cannot be drawn says so where it is shown; the run stands
            if trace:
                traceback.print_exc()
    summarise(run)
    progress("done", 1, 1)
    return run


def summarise(run: Run) -> None:
    """Copy JSON-able summaries of the computed analyses into results.sections (for JSON and the report), with
    the folder format and what failed."""
    for a in ANALYSES.values():
        out = cached_analysis(run, a.name)
        if out is not None and hasattr(out, "to_dict"):
            try:
                run.results.sections[a.name] = out.to_dict()
            except Exception:  # noqa: BLE001 - a summary is optional
                pass
    run.results.analyses = {"format": FORMAT, "run_key": run.key, "data_label": run.data_label,
                            "failed": dict(run.failed), "skipped": sorted(run.skipped), "complete": not run.failed}


# ---------------------------------------------------------------------------------------------
# a results folder
# ---------------------------------------------------------------------------------------------
def writable_folder(out: str | Path) -> Path:
    """`out`, created if missing, after checking that it can be written (else one line, before any work)."""
    p = Path(out)
    try:
        p.mkdir(parents=True, exist_ok=True)
        probe = p / ".residue-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise ResidueError(f"cannot write to the output folder '{out}': {e.strerror or e}.") from None
    return p


def save(run: Run, out: str | Path) -> Path:
    """Write results.json and analyses.pkl (every analysis that is plain data) into the folder `out`."""
    p = writable_folder(out)
    summarise(run)
    kept = {}
    for key, value in run.computed().items():
        try:
            load_result(dump_result(value))
        except Exception:  # noqa: BLE001 - inputs holding tensors (probe data, contexts) are not results
            continue
        kept[key] = value
    payload = dump_result({"analyses": kept, "failed": dict(run.failed), "skipped": set(run.skipped)})
    try:
        (p / ANALYSES_FILE).write_bytes(hashlib.sha256(payload).hexdigest().encode() + payload)
        run.results.to_json(p / "results.json")
    except OSError as e:
        raise ResidueError(f"cannot write results to '{out}': {e.strerror or e}.") from None
    return p / "results.json"


def load(folder: str | Path, store: ModelStore | None = None) -> Run:
    """A run read back from a results folder: its results and saved analyses, nothing recomputed. A folder from
    an older version, cut short or edited is refused with one line."""
    p = Path(folder)
    if not p.is_dir():
        raise ResidueError(f"results folder '{folder}' not found.")
    try:
        data = json.loads((p / "results.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ResidueError(f"'{folder}' holds no results.json: not a results folder (write one with "
                           f"'residue run --config X --out {folder}').") from None
    except (OSError, ValueError) as e:
        raise ResidueError(f"'{folder}/results.json' cannot be read ({type(e).__name__}): the run was cut short "
                           f"or the file edited; run it again.") from None
    meta = data.get("analyses") if isinstance(data, dict) else None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ResidueError(f"'{folder}' was written by another version of Residue (results folder format "
                           f"{(meta or {}).get('format', 'none')}, this one reads {FORMAT}); run it again.")
    try:
        results = Results.from_dict(data)
        config = from_dict(results.config)
        blob = (p / ANALYSES_FILE).read_bytes()
    except FileNotFoundError:
        raise ResidueError(f"'{folder}' has no {ANALYSES_FILE}: the run was cut short; run it again.") from None
    except (OSError, TypeError, KeyError, ValueError) as e:
        raise ResidueError(f"'{folder}/results.json' is not a run's results ({e}); run it again.") from None
    payload = blob[_HEADER:]
    if hashlib.sha256(payload).hexdigest().encode() != blob[:_HEADER]:
        raise ResidueError(f"'{folder}/{ANALYSES_FILE}' is incomplete or changed (checksum mismatch): the run was "
                           f"cut short; run it again.")
    for a in ANALYSES.values():  # the unpickler builds only dataclasses of modules already imported: theirs
        a.available()
    try:
        saved = load_result(payload)
    except Exception as e:  # noqa: BLE001 - the unpickler refuses anything but plain data
        raise ResidueError(f"'{folder}/{ANALYSES_FILE}' cannot be read ({e}); run it again.") from None
    exp = Experiment(config, store=store or ModelStore())
    run = Run(meta.get("run_key", ""), config, exp, results, meta.get("data_label", ""), results.seconds,
              dict(saved.get("failed", {})), set(saved.get("skipped", ())), saved=True)
    run._memo.update(saved.get("analyses", {}))
    return run


def summary(run: Run) -> dict[str, Any]:
    """The JSON-able summary of a run (what results.json holds)."""
    summarise(run)
    return run.results.to_dict()
