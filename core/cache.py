"""Content-addressed model store.

A model is stored under the hash of everything that determines its weights. Files are written to a
temporary name and renamed (atomic), carry a SHA-256 of their payload, and are loaded with
`weights_only=True`: a truncated or corrupt entry is detected, removed and rebuilt, never served.
If the cache directory is read-only or the disk is full, the store keeps models in memory and says so.
Building a model takes a lock per key, across threads and across processes (`fcntl.flock`, which the OS
drops when its holder dies, however it dies): two runs on one cache train a model once.

Beside models it keeps *results* (small dataclasses of numbers and numpy arrays, e.g. the dashboard's
analyses of `core.analysis`), pickled but read back with an unpickler that builds nothing except the engine's own
dataclasses, numpy arrays and plain containers: a planted file cannot run code.
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import io
import json
import os
import pickle
import sys
import tempfile
import threading
import warnings
from collections import OrderedDict, defaultdict
from pathlib import Path
from typing import Any, Callable, Iterator

try:
    import fcntl
except ImportError:  # not POSIX: models are still built once per process, not across processes
    fcntl = None

import numpy as np
import torch
from torch import nn

_HEADER = 64  # hex SHA-256 of the payload, then the payload


def stable_hash(parts: Any) -> str:
    """Hash of a JSON-able description (dict order does not matter)."""
    blob = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def digest(*parts: Any, length: int = 24) -> str:
    """SHA-256 of arrays or bytes, in order (an array by its values, C order): the one content hash behind every
    fingerprint below, so the same data always gets the same key whichever module asks."""
    h = hashlib.sha256()
    for p in parts:
        h.update(p if isinstance(p, (bytes, bytearray)) else np.ascontiguousarray(p).tobytes())
    return h.hexdigest()[:length]


def index_fingerprint(idx: Any, length: int = 24) -> str:
    """Hash of a set of sample indices (a split's part), as int64 in the given order."""
    return digest(np.asarray(idx, dtype=np.int64), length=length)


def bytes_fingerprint(raw: bytes) -> str:
    """Hash of an uploaded file (a dataset or a checkpoint): it enters the run key and the model keys."""
    return digest(raw)


_DATA_FINGERPRINTS: dict[int, tuple[Any, str]] = {}


def data_fingerprint(dataset: Any) -> str:
    """Content hash of a dataset's X and y, so uploads and edited files never hit a stale cache entry.
    Memoised by identity (the dataset is held with its hash, so its id is not reused): hashing an image set
    takes a while and every experiment and shadow pool asks."""
    hit = _DATA_FINGERPRINTS.get(id(dataset))
    if hit is not None and hit[0] is dataset:
        return hit[1]
    fp = digest(dataset.X, dataset.y)
    _DATA_FINGERPRINTS[id(dataset)] = (dataset, fp)
    return fp


def run_key(config: Any, data_fp: str | None = None, ckpt_fp: str | None = None) -> str:
    """The key of one run: its config and the fingerprints of an uploaded dataset and θ_o checkpoint."""
    return stable_hash({"config": config.to_dict(), "data": data_fp, "checkpoint": ckpt_fp})


def analysis_key(name: str, settings: dict) -> str:
    """The key of one analysis of a run with its full settings (memo and result cache alike)."""
    return stable_hash([name, settings])


def result_key(run: str, analysis: str, code: str) -> str:
    """Where the result cache keeps an analysis of a run computed by this code (`source_fingerprint`)."""
    return stable_hash([run, analysis, code])


@functools.lru_cache(maxsize=None)
def source_fingerprint(*paths: str | Path) -> str:
    """Hash of the Python sources under `paths` (files or folders): a stored result computed by other
    code is never served."""
    h = hashlib.sha256()
    for root in map(Path, paths):
        for f in sorted([root] if root.is_file() else root.rglob("*.py")):
            h.update(str(f.relative_to(root.parent)).encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()[:32]


_ALLOWED_GLOBALS = {("numpy", "dtype"), ("numpy", "ndarray"), ("collections", "OrderedDict"), ("builtins", "set"),
          ("builtins", "frozenset"), ("builtins", "complex")} | {
    (f"numpy.{core}.{mod}", name) for core in ("core", "_core")
    for mod, name in (("numeric", "_frombuffer"), ("multiarray", "_reconstruct"), ("multiarray", "scalar"))}


class _ResultUnpickler(pickle.Unpickler):
    """Builds only dataclasses defined in `core` modules that are already imported (so a
    planted file cannot make it import, i.e. run, a module), numpy arrays and scalars, and builtin
    containers; any other global (os.system, torch's own loaders...) is refused."""

    def find_class(self, module: str, name: str):
        if (module, name) in _ALLOWED_GLOBALS:
            return super().find_class(module, name)
        if module.split(".")[0] == "core" and module in sys.modules:
            obj = getattr(sys.modules[module], name, None)
            if isinstance(obj, type) and dataclasses.is_dataclass(obj):
                return obj
        raise pickle.UnpicklingError(f"refused to load {module}.{name}")


def dump_result(obj: Any) -> bytes:
    return pickle.dumps(obj, protocol=5)


def load_result(payload: bytes) -> Any:
    return _ResultUnpickler(io.BytesIO(payload)).load()


def default_root() -> Path:
    return Path(os.environ.get("RESIDUE_CACHE", Path.home() / ".cache" / "residue"))


class ModelStore:
    def __init__(self, root: str | Path | None = None, memory_limit: int = 512 * 2**20):
        self.root = Path(root) if root is not None else default_root()
        self.memory: OrderedDict[str, bytes] = OrderedDict()  # the fallback when the folder is not writable
        self.memory_limit = memory_limit  # bytes; the least recently used entries go first (rebuilt if asked)
        self.in_memory = False
        self.notes: list[str] = []  # warnings a UI should show (e.g. fell back to memory)
        self._locks: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)
        self._guard = threading.Lock()

    def _path(self, key: str) -> Path:
        if key.startswith("result-"):
            return self.root / "results" / key[7:9] / f"{key[7:]}.pkl"
        return self.root / key[:2] / f"{key}.pt"

    def _fallback(self, err: OSError) -> None:
        if not self.in_memory:
            self.in_memory = True
            msg = f"Model cache at {self.root} is not writable ({err.strerror or err}); keeping models in memory."
            self.notes.append(msg)
            warnings.warn(msg, RuntimeWarning, stacklevel=3)

    def save(self, key: str, model: nn.Module, meta: dict | None = None) -> None:
        buf = io.BytesIO()
        torch.save({"state": {k: v.detach().cpu() for k, v in model.state_dict().items()}, "meta": meta or {}}, buf)
        self._put(key, buf.getvalue())

    def _put(self, key: str, payload: bytes) -> None:
        blob = hashlib.sha256(payload).hexdigest().encode() + payload
        if not self.in_memory:
            try:
                self._write(self._path(key), blob)
                return
            except OSError as e:
                self._fallback(e)
        with self._guard:
            self.memory[key] = blob
            self.memory.move_to_end(key)
            total = sum(map(len, self.memory.values()))
            while total > self.memory_limit and len(self.memory) > 1:
                total -= len(self.memory.popitem(last=False)[1])

    def _get(self, key: str) -> bytes | None:
        """The payload stored under `key`, or None; a corrupt entry is removed."""
        blob = self._read(key)
        if blob is None:
            return None
        payload = blob[_HEADER:]
        if hashlib.sha256(payload).hexdigest().encode() != blob[:_HEADER]:
            self.notes.append(f"Cache entry {key[:15]} was corrupt (checksum mismatch); rebuilt it.")
            self._discard(key)
            return None
        return payload

    def save_result(self, key: str, obj: Any) -> bool:
        """Store a result (see `load_result`) on disk; False, storing nothing, if it is not one that
        `load_result` would read back (e.g. it holds tensors or models), or the store is in memory only
        (the caller's memo already holds it)."""
        if self.in_memory:
            return False
        try:
            payload = dump_result(obj)
            load_result(payload)
        except Exception:  # noqa: BLE001 - not a storable result: it simply stays in memory
            return False
        self._put(f"result-{key}", payload)
        return True

    def load_result(self, key: str) -> Any | None:
        """A stored result, or None if absent, corrupt or holding anything but plain data (then removed)."""
        payload = self._get(f"result-{key}")
        if payload is None:
            return None
        try:
            return load_result(payload)
        except Exception as e:  # noqa: BLE001 - any decoding failure means: recompute
            self.notes.append(f"Cached result {key[:8]} could not be read ({e}); recomputed it.")
            self._discard(f"result-{key}")
            return None

    @staticmethod
    def _write(path: Path, blob: bytes) -> None:
        """Write to a temporary file, then rename: readers see the whole entry or none. Whatever stops the
        write (full disk, Stop, a crash in between), the temporary file is removed before the error goes on."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".pt")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(blob)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise

    def _read(self, key: str) -> bytes | None:
        with self._guard:
            if key in self.memory:
                self.memory.move_to_end(key)
                return self.memory[key]
        try:
            return self._path(key).read_bytes()
        except OSError:
            return None

    def _discard(self, key: str) -> None:
        with self._guard:
            self.memory.pop(key, None)
        try:
            self._path(key).unlink()
        except OSError:
            pass

    def load(self, key: str, template: nn.Module) -> tuple[nn.Module, dict] | None:
        """Fill `template` with the stored weights; None if absent or corrupt (a corrupt entry is removed)."""
        payload = self._get(key)
        if payload is None:
            return None
        try:
            obj = torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
            template.load_state_dict(obj["state"])
        except Exception as e:  # noqa: BLE001 - any decoding failure means: rebuild
            self.notes.append(f"Cached model {key[:8]} was corrupt ({e}); rebuilt it.")
            self._discard(key)
            return None
        return template, dict(obj.get("meta", {}))

    @contextlib.contextmanager
    def _process_lock(self, key: str) -> Iterator[str | None]:
        """Hold `key`'s lock file against other processes; yields None, or the pid of the process it waited for.

        The lock is `flock` on a file beside the entry: the OS releases it when the holder exits or is killed,
        so a crashed run never blocks the next. The holder removes the file before it lets go; a waiter that
        then holds a lock on a removed file starts again on the new one. Where no lock file can be made
        (read-only or full disk, no fcntl) the model is built without one: at worst twice, never wrongly.
        """
        path = self._path(key).with_suffix(".lock")
        waited_for = None
        while True:
            fd = None
            if fcntl is not None:
                with contextlib.suppress(OSError):
                    path.parent.mkdir(parents=True, exist_ok=True)
                    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            if fd is None:
                yield None
                return
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    waited_for = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
                    fcntl.flock(fd, fcntl.LOCK_EX)
                try:
                    same = os.path.samestat(os.fstat(fd), os.stat(path))
                except FileNotFoundError:
                    same = False
                if same:
                    os.ftruncate(fd, 0)
                    os.pwrite(fd, str(os.getpid()).encode(), 0)
                    try:
                        yield waited_for
                    finally:
                        with contextlib.suppress(OSError):
                            path.unlink()
                    return
            finally:
                os.close(fd)  # closing drops the flock

    def get_or_build(
        self,
        parts: Any,
        template: Callable[[], nn.Module],
        build: Callable[[], tuple[nn.Module, dict]],
    ) -> tuple[nn.Module, dict, bool]:
        """Load the model described by `parts`, or build, store and return it. Returns (model, meta, hit).

        One lock per key, across threads and processes: two sessions or two runs asking for the same model
        train it once; the second waits for the first and loads what it stored.
        """
        key = stable_hash(parts)
        with self._guard:
            lock = self._locks[key]
        with lock, self._process_lock(key) as waited_for:
            found = self.load(key, template())
            if waited_for is not None:
                self.notes.append(f"Model {key[:8]} was being built by another process (pid {waited_for}); "
                                  + ("waited and reused it." if found is not None else
                                     "it stopped before storing it, so it was built here."))
            if found is not None:
                return found[0], found[1], True
            model, meta = build()
            self.save(key, model, meta)
            return model, meta, False
