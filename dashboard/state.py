"""The dashboard's session layer: the session's run and job, shared between sessions of the server process.

    run = state.current()                        # the session's finished Run (`core.analysis.Run`), or None
    state.job()                                  # the session's running Job, or None
    state.start(config, dataset=..., checkpoint=..., warm=...)   # "Run everything" (a background thread)

"Run everything" is `core.analysis.Pipeline`: this module runs it in a thread, publishes the run as soon as its
models are measured and polls it from the page script; the analyses themselves (`dashboard.analyses` over
`core.analysis`) are read by the layers above. Heavy objects live in `st.cache_resource` (shared by every
session of the server process, bounded): one `ModelStore` (the engine's on-disk model and result cache, whose
per-key locks stop two sessions training the same model twice) and a small LRU of finished `Run`s keyed by
`core.cache.run_key` (config hash + fingerprints of an uploaded dataset and checkpoint). Nothing here is keyed by
session, yet nothing leaks across sessions: a run is found only through its key, which needs the uploaded bytes
themselves; the session's own uploads stay in `st.session_state`. Nothing here imports a layer above it: the
warm-up of the views is handed to `start` as a callback.
"""
from __future__ import annotations

import threading
import time
import traceback
from collections import defaultdict
from typing import Callable

import streamlit as st

from core.analysis import LRU, Pipeline, Run, analyse
from core.cache import ModelStore
from core.config import ExperimentConfig
from core.data import Dataset
from core.errors import Cancelled, ResidueError
from core.progress import Event, Progress

MAX_RUNS = 4  # finished runs kept in memory per server process (each holds a few small models)
MAX_CHECKPOINT_BYTES = 100 * 2**20


# ---------------------------------------------------------------------------------------------
# runs
# ---------------------------------------------------------------------------------------------
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


def build_run(pipeline: Pipeline, registry: _Runs, job: Job, warm: Callable[[Run], None] | None) -> Run:
    """The pipeline of `core.analysis`, shared between sessions: the models once per key (sessions asking for the
    same run at once share one Run and its analyses), published as soon as they are measured, then the analyses
    and the warm-up the page handed over."""
    start = time.perf_counter()
    with registry.building(pipeline.key):
        found = registry.get(pipeline.key)
        fresh = found is None
        if fresh:
            found = pipeline.measure(job.progress)
            registry.put(found)

    def started(todo) -> None:
        job.pending = {a.name for a in todo}
        job.partial = found

    def done(a) -> None:
        job.pending.discard(a.name)
        job.analyses_done += 1

    analyse(found, job.progress, warm=warm, on_start=started, on_done=done)
    if fresh:  # a run taken from memory keeps the time it took the first time
        found.seconds = time.perf_counter() - start
    registry.put(found)
    return found


# ---------------------------------------------------------------------------------------------
# the session's view of all this
# ---------------------------------------------------------------------------------------------
def start(config: ExperimentConfig, dataset: Dataset | None = None, data_label: str = "",
          data_fp: str | None = None, checkpoint: tuple[dict, str] | None = None,
          warm: Callable[[Run], None] | None = None) -> Job:
    """Start "Run everything" for this session (any running job of the session is stopped first). `warm(run)`
    runs after the analyses (the views build what each page shows first: `dashboard.warmup`)."""
    old = job()
    if old is not None:
        old.cancel()
    pipeline = Pipeline(config, store=model_store(), dataset=dataset, data_label=data_label, data_fp=data_fp,
                        checkpoint=checkpoint)  # the store and the registry resolved here, on the script thread
    registry = runs()
    j = Job(pipeline.key, lambda job: build_run(pipeline, registry, job, warm)).start()
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
