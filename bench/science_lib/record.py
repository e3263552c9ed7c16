"""The typed record of one science job (one scenario x one seed): what `jobs.measure` returns, what
reports/science.json stores under "results", and what aggregation and the report read.

The top level is typed; each section keeps the nested shape the JSON has always had (model -> metric -> value),
described beside its field. `from_dict(to_dict())` is the identity, key order included, and a record from an
older report loads: a section it predates is None (the report says "not in these results"), and a key this
version does not know is kept in `extra` and written back.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from core.errors import ResidueError


@dataclass
class JobRecord:
    scenario: str  # a key of grid.PRESETS: "class", "sample", "moons"
    seed: int
    config: str  # the job's config as TOML (the preset with the seed and the methods replaced)
    quality: dict[str, dict[str, Any]]  # §1, model -> UA, RA, TA, MIA, time, seconds, status[, verdict]
    seconds: dict[str, float]  # wall time per step ("train", "quality", ..., "total")
    split: dict[str, int] | None = None  # sizes: train, test, shadow, forget, retain
    pseudo: dict[str, dict[str, Any]] | None = None  # §5, model or control -> distances from the retrain band
    controls: dict[str, dict[str, Any]] | None = None  # §5, core.trust.outcomes of the verdict's controls
    measures: dict[str, dict[str, Any]] | None = None  # §5, the verdict's measures (label, family, ...)
    rurk: dict[str, Any] | None = None  # §4, "norm", "radii", then method -> r_τ, shares, rates per radius
    rea: dict[str, dict[str, Any]] | None = None  # §3, target -> ReA and prior attacks' ROC summaries
    generalisation: dict[str, float] | None = None  # §2 (sample-wise scenarios): θ_o's train and test accuracy
    leak_single: dict[str, dict[str, Any]] | None = None  # §2, mitigation -> feature -> AUC
    leak_group: dict[str, Any] | None = None  # §2, "group_size", then target -> {"none": feature -> AUC}
    competition: dict[str, Any] | None = None  # §6, F of the ceiling, floor and methods, or {"skipped": why}
    extra: dict[str, Any] = field(default_factory=dict)  # keys this version does not know, kept as they were

    # the order of the keys in science.json (a record written back is the same text)
    ORDER = ("scenario", "seed", "config", "split", "quality", "pseudo", "controls", "measures", "rurk", "rea",
             "generalisation", "leak_single", "leak_group", "competition", "seconds")
    REQUIRED = ("scenario", "seed", "config", "quality", "seconds")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "JobRecord":
        """A record from its JSON form; one clear error (not a KeyError) for a record that is not one."""
        if not isinstance(d, dict):
            raise ResidueError(f"A science job record must be a JSON object, not {type(d).__name__}.")
        missing = [k for k in cls.REQUIRED if k not in d]
        if missing:
            raise ResidueError(f"A science job record lacks {', '.join(repr(k) for k in missing)} "
                               f"(has {', '.join(map(repr, d)) or 'nothing'}).")
        known = {f.name for f in fields(cls)} - {"extra"}
        return cls(**{k: v for k, v in d.items() if k in known}, extra={k: v for k, v in d.items() if k not in known})

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: the sections this record has, in science.json's order, then the unknown keys."""
        out = {k: getattr(self, k) for k in self.ORDER if getattr(self, k) is not None}
        return {**out, **self.extra}

    def part(self, name: str) -> Any:
        """One top-level section by its JSON key (None when this record has none): what key paths start from."""
        return getattr(self, name) if name in self.ORDER else self.extra.get(name)
