"""The analyses of a finished run: a registry, a run that memoises them, and the on-disk result cache.

An analysis is a name, the settings it takes with their defaults (declared once, here at registration: the
dashboard's pages and warm-up, the command line and the tests all read them from the registry), the engine
modules it needs, and `compute(run, progress, **settings)`. `analysis(run, name, **settings)` fills in the
defaults, memoises the result on the run (keyed by name and settings, one computation however many threads ask),
and keeps it in the model store's result cache keyed by the run, the settings and the source of `core`, so a
result this code computed before is read back (with the safe unpickler of `core.cache`) instead of recomputed.
"""
from __future__ import annotations

import importlib
import threading
from collections import OrderedDict, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..cache import analysis_key, result_key, source_fingerprint
from ..config import ExperimentConfig, dumps
from ..errors import ResidueError
from ..experiment import Experiment
from ..progress import Progress
from ..results import Results

MAX_DERIVED = 64  # things derived from a run's analyses (the dashboard's figure panels) kept per run
CORE = Path(__file__).resolve().parents[1]  # the code whose fingerprint keys the result cache


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
    """One finished experiment: config, engine objects, output-level results and memoised analyses.

    `saved`: read back from a results folder (`core.analysis.pipeline.load`): its analyses are what was saved,
    and nothing is computed (its models were never loaded)."""

    key: str
    config: ExperimentConfig
    exp: Experiment
    results: Results
    data_label: str
    seconds: float = 0.0
    failed: dict = field(default_factory=dict)  # analysis name -> the one-line error it ended with
    skipped: set = field(default_factory=set)  # analyses left out on purpose (the command line's --skip)
    saved: bool = False
    _memo: dict = field(default_factory=dict, repr=False)
    _locks: defaultdict = field(default_factory=lambda: defaultdict(threading.Lock), repr=False)
    # what callers derive from the analyses (the dashboard's figure panels), built once per key for every caller
    panels: LRU = field(default_factory=lambda: LRU(MAX_DERIVED), repr=False)

    def memoised(self, key, build: Callable[[], tuple[Any, bool]]) -> Any:
        """What `build` makes under `key`, made once: callers asking for it meanwhile wait for that one build
        instead of repeating it. `build` returns (value, keep); keep=False: not stored."""
        found = self.panels.get(key)
        if found is None:
            with self._locks[("panels", key)]:
                found = self.panels.get(key)
                if found is None:
                    found, keep = build()
                    if keep:
                        self.panels.put(key, found)
        return found

    def computed(self) -> dict[str, Any]:
        """The analyses computed so far: {analysis key: result} (a copy; the results are shared)."""
        return dict(self._memo)

    def copy(self, share_analyses: bool = True) -> "Run":
        """The same run with no derived panels: its analyses shared (or none, to compute them again)."""
        return Run(self.key, self.config, self.exp, self.results, self.data_label, self.seconds, dict(self.failed),
                   set(self.skipped), self.saved, self._memo if share_analyses else {})

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


def methods(run: Run) -> list[str]:
    """The unlearned models of a run (every model but θ_o and θ_r), in config order."""
    return [n for n in run.model_names if n not in ("original", "retrain")]


# ---------------------------------------------------------------------------------------------
# the registry
# ---------------------------------------------------------------------------------------------
class EngineMissing(Exception):
    """The engine module an analysis needs is not in this checkout (or not installed)."""

    def __init__(self, analysis: "Analysis"):
        super().__init__(f"{analysis.title} arrives with {analysis.arrives_with}.")
        self.analysis = analysis


@dataclass
class Analysis:
    name: str
    title: str
    modules: tuple[str, ...]  # engine modules it needs, imported lazily
    arrives_with: str  # what a view says until they exist
    compute: Callable[..., Any]  # compute(run, progress, **settings) -> result
    defaults: dict = field(default_factory=dict)  # its settings and their defaults, declared here only
    in_run_everything: bool = True
    applies: Callable[[Run], bool] | None = None  # does "Run everything" compute it for this run?
    resolve: Callable[[Run, dict], dict] | None = None  # fills run-dependent defaults (e.g. the first method)
    persist: bool = True  # kept in the on-disk result cache (False: inputs holding tensors or locks)

    def available(self) -> bool:
        try:
            for m in self.modules:
                importlib.import_module(m)
        except ImportError:
            return False
        return True


ANALYSES: dict[str, Analysis] = {}


def register(name: str, title: str, modules: tuple[str, ...], arrives_with: str, in_run_everything: bool = True,
             defaults: dict | None = None, applies: Callable[[Run], bool] | None = None,
             resolve: Callable[[Run, dict], dict] | None = None, persist: bool = True):
    """Decorator registering an analysis compute function; the registration order is "Run everything"'s."""

    def add(fn):
        ANALYSES[name] = Analysis(name, title, modules, arrives_with, fn, dict(defaults or {}), in_run_everything,
                                  applies, resolve, persist)
        return fn

    return add


def available(name: str) -> bool:
    return ANALYSES[name].available()


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

    Raises EngineMissing while the engine module does not exist; ResidueError for what the user asked (and for
    anything a saved run did not save)."""
    a = ANALYSES[name]
    if not a.available():
        raise EngineMissing(a)
    settings = resolved(run, name, settings)
    key = analysis_key(name, settings)
    if key in run._memo:
        return run._memo[key]
    if name in run.skipped:
        raise ResidueError(f"{a.title} was left out of this run.")
    if name in run.failed and settings == resolved(run, name):  # "Run everything" tried exactly this
        raise ResidueError(run.failed[name])
    if run.saved:
        raise ResidueError(f"{a.title} with these settings is not in the saved results.")
    with run._locks[key]:
        if key not in run._memo:
            run._memo[key] = _stored_or_computed(run, a, key, settings, progress or Progress())
    return run._memo[key]


def _stored_or_computed(run: Run, a: Analysis, key: str, settings: dict, progress: Progress) -> Any:
    """The result from the store's result cache if this code computed it before, else computed and stored."""
    store = getattr(run.exp, "store", None) if a.persist else None
    if store is None:
        return a.compute(run, progress, **settings)
    disk = result_key(run.key, key, source_fingerprint(CORE))
    found = store.load_result(disk)
    if found is None:
        found = a.compute(run, progress, **settings)
        store.save_result(disk, found)
    return found


def cached_analysis(run: Run, name: str, **settings) -> Any | None:
    """The memoised result if it is already there (never computes)."""
    return run._memo.get(analysis_key(name, resolved(run, name, settings)))
