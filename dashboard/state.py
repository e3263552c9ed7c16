"""The dashboard's service layer: the only place pages reach the engine.

Pages ask for data through four calls and never touch `core` themselves:

    run = state.current()                        # the session's finished Run, or None
    state.job()                                  # the session's running Job, or None
    out = state.analysis(run, "attacks", **kw)   # one analysis of a run, memoised on the run
    state.start(config, dataset=..., checkpoint=...)   # "Run everything" (a background thread)

Heavy objects live in `st.cache_resource` (shared by every session of the server process, bounded):
one `ModelStore` (the engine's on-disk model cache, whose per-key locks stop two sessions training the
same model twice) and a small LRU of finished `Run`s keyed by `run_key` (config hash + fingerprints of an
uploaded dataset and checkpoint). A run's analyses (attacks, probes, verdict...) are memoised on the Run
itself, keyed by the analysis name and its settings: "Run everything" fills them with default settings in
the background thread, pages read them instantly, and a page setting that changes recomputes only that
analysis. Each result is also kept in the model store's result cache (keyed by the run, the settings and
the source of the code that computes it), so a restarted server shows a run it has seen before at once. Nothing here is keyed by session, yet nothing leaks across sessions: a run is found only through
its key, which needs the uploaded bytes themselves; the session's own uploads stay in `st.session_state`.
"""
from __future__ import annotations

import importlib
import threading
import time
import traceback
from collections import OrderedDict, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import streamlit as st

from core.cache import ModelStore, source_fingerprint, stable_hash
from core.config import ExperimentConfig, dumps
from core.data import Dataset
from core.errors import Cancelled, ResidueError
from core.experiment import CheckpointExperiment, Experiment, checkpoint_fingerprint
from core.progress import Event, Progress
from core.results import Results

MAX_RUNS = 4  # finished runs kept in memory per server process (each holds a few small models)
MAX_PANELS = 64  # sets of figure panels kept per run (one per view and settings), shared by every session
MAX_CHECKPOINT_BYTES = 100 * 2**20


# ---------------------------------------------------------------------------------------------
# runs
# ---------------------------------------------------------------------------------------------
class LRU:
    """A small thread-safe map that forgets its least recently used entries beyond `size`."""

    def __init__(self, size: int):
        self.size = size
        self._items: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key, default=None):
        with self._lock:
            if key not in self._items:
                return default
            self._items.move_to_end(key)
            return self._items[key]

    def put(self, key, value) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def keys(self) -> list:
        with self._lock:
            return list(self._items)


@dataclass
class Run:
    """One finished experiment: config, engine objects, output-level results and memoised analyses."""

    key: str
    config: ExperimentConfig
    exp: Experiment
    results: Results
    data_label: str
    seconds: float = 0.0
    failed: dict = field(default_factory=dict)  # analysis name -> the one-line error it ended with
    _memo: dict = field(default_factory=dict, repr=False)
    _locks: defaultdict = field(default_factory=lambda: defaultdict(threading.Lock), repr=False)
    # the views' figure panels, built once per settings for every session (`views.memoised`)
    panels: LRU = field(default_factory=lambda: LRU(MAX_PANELS), repr=False)

    def memoised(self, key, build: Callable[[], tuple[Any, bool]]) -> Any:
        """What `build` makes under `key` (the views' panels), made once: sessions asking for it meanwhile wait
        for that one build instead of repeating it. `build` returns (value, keep); keep=False: not stored."""
        found = self.panels.get(key)
        if found is None:
            with self._locks[("panels", key)]:
                found = self.panels.get(key)
                if found is None:
                    found, keep = build()
                    if keep:
                        self.panels.put(key, found)
        return found

    @property
    def toml(self) -> str:
        return settings_text(self.config, self.data_label)

    @property
    def seed(self) -> int:
        return int(self.config.seed)

    @property
    def model_names(self) -> list[str]:
        return [m.name for m in self.results.models]


def settings_text(config: ExperimentConfig, data_label: str = "") -> str:
    """The config TOML that reproduces a run, headed by seed, hash and where the data came from."""
    head = [f"# Residue experiment - seed {config.seed}, config hash {config.hash()}"]
    if data_label and data_label != config.data.name:
        head.append(f"# data: {data_label}")
    return "\n".join(head) + "\n" + dumps(config)


def run_key(config: ExperimentConfig, data_fp: str | None = None, ckpt_fp: str | None = None) -> str:
    return stable_hash({"config": config.to_dict(), "data": data_fp, "checkpoint": ckpt_fp})


@st.cache_resource(show_spinner=False)
def model_store() -> ModelStore:
    """One on-disk model store per server process (root: $RESIDUE_CACHE or ~/.cache/residue)."""
    return ModelStore()


class _Runs:
    """LRU of finished runs, shared by all sessions of this process."""

    def __init__(self, size: int = MAX_RUNS):
        self._runs: LRU = LRU(size)
        self._lock = threading.Lock()
        self._building: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)

    def get(self, key: str | None) -> Run | None:
        return self._runs.get(key) if key else None

    def building(self, key: str) -> threading.Lock:
        """The lock held while the run `key` is built, so concurrent sessions build it once."""
        with self._lock:
            return self._building[key]

    def put(self, run: Run) -> None:
        self._runs.put(run.key, run)


@st.cache_resource(show_spinner=False)
def runs() -> _Runs:
    return _Runs()


# ---------------------------------------------------------------------------------------------
# checkpoints: an uploaded θ_o instead of training one
# ---------------------------------------------------------------------------------------------
def load_checkpoint(raw: bytes, template) -> dict:
    """Parse an uploaded checkpoint (`weights_only=True`, never unpickled) and check it fits `template`."""
    from core.models import load_checkpoint as parse

    return parse(raw, template, MAX_CHECKPOINT_BYTES)


def fingerprint_bytes(raw: bytes) -> str:
    return checkpoint_fingerprint(raw)


# ---------------------------------------------------------------------------------------------
# analyses: everything beyond output-level results, computed lazily from engine modules
# ---------------------------------------------------------------------------------------------
class EngineMissing(Exception):
    """The engine module an analysis needs is not in this checkout yet."""

    def __init__(self, analysis: "Analysis"):
        super().__init__(f"{analysis.title} arrives with {analysis.arrives_with}.")
        self.analysis = analysis


@dataclass
class Analysis:
    name: str
    title: str
    modules: tuple[str, ...]  # engine modules it needs, imported lazily
    arrives_with: str  # what the page says until they exist
    compute: Callable[..., Any] | None  # compute(run, progress, **settings) -> result; None: not wired yet
    defaults: dict = field(default_factory=dict)
    in_run_everything: bool = True
    applies: Callable[["Run"], bool] | None = None  # does "Run everything" compute it for this run?
    resolve: Callable[["Run", dict], dict] | None = None  # fills run-dependent defaults (e.g. the first method)
    persist: bool = True  # kept in the on-disk result cache (False: inputs holding tensors or locks)

    def available(self) -> bool:
        if self.compute is None:  # declared, not wired yet
            return False
        try:
            for m in self.modules:
                importlib.import_module(m)
        except ImportError:
            return False
        return True


ANALYSES: dict[str, Analysis] = {}


def analysis_def(name: str, title: str, modules: tuple[str, ...], arrives_with: str, in_run_everything: bool = True,
                 defaults: dict | None = None, applies: Callable[[Run], bool] | None = None,
                 resolve: Callable[[Run, dict], dict] | None = None, persist: bool = True):
    """Decorator registering an analysis compute function (None: declared, not wired yet)."""

    def add(fn):
        ANALYSES[name] = Analysis(name, title, modules, arrives_with, fn, dict(defaults or {}), in_run_everything,
                                  applies, resolve, persist)
        return fn

    return add


def available(name: str) -> bool:
    return ANALYSES[name].available()


def _memo_key(name: str, settings: dict) -> str:
    return stable_hash([name, settings])


def resolved(run: Run, name: str, settings: dict | None = None) -> dict:
    """The full settings of an analysis: its defaults, then `settings`, then the run-dependent defaults."""
    a = ANALYSES[name]
    out = {**a.defaults, **(settings or {})}
    return a.resolve(run, out) if a.resolve is not None else out


def is_default(run: Run, name: str, settings: dict) -> bool:
    """Do these settings ask for what "Run everything" computes?"""
    return resolved(run, name, settings) == resolved(run, name)


def analysis(run: Run, name: str, progress: Progress | None = None, **settings) -> Any:
    """The result of analysis `name` on `run` with `settings` (defaults filled in), memoised on the run.

    Raises EngineMissing while the engine module does not exist; ResidueError for what the user asked.
    """
    a = ANALYSES[name]
    if not a.available():
        raise EngineMissing(a)
    settings = resolved(run, name, settings)
    key = _memo_key(name, settings)
    if key in run._memo:
        return run._memo[key]
    with run._locks[key]:
        if key not in run._memo:
            run._memo[key] = _stored_or_computed(run, a, key, settings, progress or Progress())
    return run._memo[key]


_ROOT = Path(__file__).resolve().parents[1]


def _stored_or_computed(run: Run, a: Analysis, key: str, settings: dict, progress: Progress) -> Any:
    """The result from the store's result cache if this code computed it before, else computed and stored."""
    store = getattr(run.exp, "store", None) if a.persist else None
    if store is None:
        return a.compute(run, progress, **settings)
    disk = stable_hash([run.key, key, source_fingerprint(_ROOT / "core", _ROOT / "dashboard" / "analyses.py")])
    found = store.load_result(disk)
    if found is None:
        found = a.compute(run, progress, **settings)
        store.save_result(disk, found)
    return found


def cached_analysis(run: Run, name: str, **settings) -> Any | None:
    """The memoised result if it is already there (never computes)."""
    return run._memo.get(_memo_key(name, resolved(run, name, settings)))


# ---------------------------------------------------------------------------------------------
# jobs: "Run everything" in a background thread, polled by the page script
# ---------------------------------------------------------------------------------------------
class Job:
    """Runs one experiment and its analyses off the script thread; Stop = `cancel()`.

    The run is published (`partial`) as soon as its models are measured, so pages show the output-level
    views at once while the analyses go on; `analyses_done` counts those finished since."""

    def __init__(self, key: str, work: Callable[["Job"], Run]):
        self.key = key
        self.started = time.perf_counter()
        self.last: Event | None = None
        self.curves: dict[str, list[dict[str, float]]] = defaultdict(list)  # live unlearning curves
        self.partial: Run | None = None
        self.pending: set[str] = set()  # analyses still to compute with default settings
        self.analyses_done = 0
        self.run: Run | None = None
        self.error: str | None = None
        self.cancelled = False
        self.progress = Progress(self._on_event)
        self._work = work
        self.thread = threading.Thread(target=self._main, name=f"residue-run-{key[:8]}", daemon=True)

    def _on_event(self, e: Event) -> None:
        self.last = e
        if e.metrics and ": " in e.stage and not e.stage.startswith("analysis"):  # a method's step: live curves
            rows = self.curves[e.stage.split(": ")[0]]
            rows.append({"step": float(len(rows) + 1), **e.metrics})

    def _main(self) -> None:
        try:
            self.run = self._work(self)
        except Cancelled:
            self.cancelled = True
        except ResidueError as e:
            self.error = str(e)
        except Exception as e:  # noqa: BLE001 - shown as one line; the traceback goes to the server log
            traceback.print_exc()
            self.error = f"Unexpected error: {type(e).__name__}: {e}"

    def start(self) -> "Job":
        self.thread.start()
        return self

    def cancel(self) -> None:
        self.progress.cancel()

    @property
    def running(self) -> bool:
        return self.thread.is_alive()

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def status(self) -> tuple[float, str]:
        e = self.last
        if e is None:
            return 0.0, "starting"
        return e.fraction, f"{e.stage} ({e.step}/{e.total})"

    def milestone(self) -> tuple:
        """Changes when pages have something new to show (the models, then each analysis)."""
        return self.partial is not None, self.analyses_done


def _build_run(key: str, config: ExperimentConfig, dataset: Dataset | None, data_label: str,
               checkpoint: tuple[dict, str] | None, store: ModelStore, registry: _Runs, job: Job) -> Run:
    progress = job.progress
    start = time.perf_counter()
    with registry.building(key):  # sessions asking for the same run at once share one Run (and its analyses)
        found = registry.get(key)
        fresh = found is None
        if fresh:
            if checkpoint is not None:
                exp = CheckpointExperiment(config, checkpoint[0], checkpoint[1], store=store, dataset=dataset)
            else:
                exp = Experiment(config, store=store, dataset=dataset)
            results = exp.run(progress)
            found = Run(key, config, exp, results, data_label)
            found.seconds = time.perf_counter() - start  # until the models are measured; updated below
            registry.put(found)
    todo = [a for a in ANALYSES.values() if a.in_run_everything and a.available()
            and (a.applies is None or a.applies(found))
            and cached_analysis(found, a.name) is None and a.name not in found.failed]
    job.pending = {a.name for a in todo}
    job.partial = found
    for i, a in enumerate(todo):
        progress(f"analysis: {a.title}", i, len(todo))
        try:
            analysis(found, a.name, progress.scoped(f"analysis: {a.title}"))
        except (Cancelled, EngineMissing):
            raise
        except ResidueError as e:
            found.failed[a.name] = str(e)
        except Exception as e:  # noqa: BLE001 - one view failing must not take the others down
            traceback.print_exc()
            found.failed[a.name] = f"{a.title} failed: {type(e).__name__}: {e}"
        job.pending.discard(a.name)
        job.analyses_done += 1
    progress("drawing the figures", 1, 1)
    try:  # so that a first visit to each page after the run only draws
        from . import views

        views.warm(found)
    except (Cancelled, EngineMissing):
        raise
    except Exception:  # noqa: BLE001 - a view that cannot be drawn says so on its page; the run stands
        traceback.print_exc()
    if fresh:  # a run taken from memory keeps the time it took the first time
        found.seconds = time.perf_counter() - start
    _summarise(found)
    registry.put(found)
    progress("done", 1, 1)
    return found


def _summarise(run: Run) -> None:
    """Copy JSON-able summaries of the computed analyses into results.sections (for JSON and the report)."""
    for a in ANALYSES.values():
        out = cached_analysis(run, a.name)
        if out is not None and hasattr(out, "to_dict"):
            try:
                run.results.sections[a.name] = out.to_dict()
            except Exception:  # noqa: BLE001 - a summary is optional
                pass


# ---------------------------------------------------------------------------------------------
# the session's view of all this
# ---------------------------------------------------------------------------------------------
def start(config: ExperimentConfig, dataset: Dataset | None = None, data_label: str = "",
          data_fp: str | None = None, checkpoint: tuple[dict, str] | None = None) -> Job:
    """Start "Run everything" for this session (any running job of the session is stopped first)."""
    old = job()
    if old is not None:
        old.cancel()
    key = run_key(config, data_fp, checkpoint[1] if checkpoint else None)
    label = data_label or config.data.name
    store, registry = model_store(), runs()  # resolved here, on the script thread
    j = Job(key, lambda job: _build_run(key, config, dataset, label, checkpoint, store, registry, job)).start()
    st.session_state["job"] = j
    return j


def job() -> Job | None:
    """The session's job while it runs (or until the page has picked up its outcome)."""
    return st.session_state.get("job")


def current() -> Run | None:
    """The session's latest finished run (re-fetched from the shared LRU by key)."""
    return runs().get(st.session_state.get("run_key"))


def evicted() -> bool:
    """True when the session's run was dropped from the shared LRU (a rerun reloads it from disk)."""
    return st.session_state.get("run_key") is not None and current() is None


def adopt(j: Job) -> None:
    """Take a finished job's outcome into the session."""
    st.session_state.pop("job", None)
    if j.run is not None:
        st.session_state["run_key"] = j.run.key
        st.session_state.pop("run_error", None)
    elif j.error:
        st.session_state["run_error"] = j.error
    elif j.cancelled:
        st.session_state["run_error"] = "Stopped. Nothing half-done was kept; press Run everything to start again."


def last_error() -> str | None:
    return st.session_state.get("run_error")


def pending(run: Run, name: str) -> bool:
    """True while the session's job is still to compute analysis `name` (default settings) for `run`."""
    j = job()
    return j is not None and j.running and j.key == run.key and name in j.pending


def wait(bar_slot, live: Callable[[Job], None] | None = None, poll: float = 0.25) -> None:
    """Block the script while the session's job runs, drawing its progress; rerun at each milestone.

    The session takes the run as soon as its models are measured (so the output-level views appear),
    and the page is redrawn as each analysis lands. A click anywhere interrupts this loop (Streamlit
    reruns the script); the job keeps running in its thread and the next script run picks the loop up
    again, so changing page never stops or repeats a run.
    """
    j = job()
    if j is None:
        return
    done = j.analyses_done
    last_live = 0.0
    while j.running:
        frac, text = j.status()
        bar_slot.progress(frac, text=f"{text} · {j.elapsed:.0f} s")
        if j.partial is not None and (st.session_state.get("run_key") != j.key or j.analyses_done != done):
            st.session_state["run_key"] = j.key
            st.rerun()
        if live is not None and time.perf_counter() - last_live > 1.0:
            live(j)
            last_live = time.perf_counter()
        time.sleep(poll)
    adopt(j)
    st.rerun()

from . import analyses  # noqa: E402,F401  (registers the analyses; they use `analysis_def` above)
