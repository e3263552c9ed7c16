"""Content-addressed model store.

A model is stored under the hash of everything that determines its weights. Files are written to a
temporary name and renamed (atomic), carry a SHA-256 of their payload, and are loaded with
`weights_only=True`: a truncated or corrupt entry is detected, removed and rebuilt, never served.
If the cache directory is read-only or the disk is full, the store keeps models in memory and says so.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
import threading
import warnings
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

_HEADER = 64  # hex SHA-256 of the payload, then the payload


def stable_hash(parts: Any) -> str:
    """Hash of a JSON-able description (dict order does not matter)."""
    blob = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def default_root() -> Path:
    return Path(os.environ.get("RESIDUE_CACHE", Path.home() / ".cache" / "residue"))


class ModelStore:
    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root is not None else default_root()
        self.memory: dict[str, bytes] = {}
        self.in_memory = False
        self.notes: list[str] = []  # warnings a UI should show (e.g. fell back to memory)
        self._locks: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)
        self._guard = threading.Lock()

    def _path(self, key: str) -> Path:
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
        payload = buf.getvalue()
        blob = hashlib.sha256(payload).hexdigest().encode() + payload
        if self.in_memory:
            self.memory[key] = blob
            return
        try:
            self._write(self._path(key), blob)
        except OSError as e:
            self._fallback(e)
            self.memory[key] = blob

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
        if key in self.memory:
            return self.memory[key]
        try:
            return self._path(key).read_bytes()
        except OSError:
            return None

    def _discard(self, key: str) -> None:
        self.memory.pop(key, None)
        try:
            self._path(key).unlink()
        except OSError:
            pass

    def load(self, key: str, template: nn.Module) -> tuple[nn.Module, dict] | None:
        """Fill `template` with the stored weights; None if absent or corrupt (a corrupt entry is removed)."""
        blob = self._read(key)
        if blob is None:
            return None
        payload = blob[_HEADER:]
        try:
            if hashlib.sha256(payload).hexdigest().encode() != blob[:_HEADER]:
                raise ValueError("checksum mismatch")
            obj = torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
            template.load_state_dict(obj["state"])
        except Exception as e:  # noqa: BLE001 - any decoding failure means: rebuild
            self.notes.append(f"Cached model {key[:8]} was corrupt ({e}); rebuilt it.")
            self._discard(key)
            return None
        return template, dict(obj.get("meta", {}))

    def get_or_build(
        self,
        parts: Any,
        template: Callable[[], nn.Module],
        build: Callable[[], tuple[nn.Module, dict]],
    ) -> tuple[nn.Module, dict, bool]:
        """Load the model described by `parts`, or build, store and return it. Returns (model, meta, hit).

        One lock per key: two sessions asking for the same model train it once.
        """
        key = stable_hash(parts)
        with self._guard:
            lock = self._locks[key]
        with lock:
            found = self.load(key, template())
            if found is not None:
                return found[0], found[1], True
            model, meta = build()
            self.save(key, model, meta)
            return model, meta, False
