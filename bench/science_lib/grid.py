"""What a science sweep runs: the scenarios (preset configs and titles) of the small and the paper grids, and the
`Grid` of sizes (seeds, methods, shadows, draws) every job reads."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PRESETS = {"class": "forget_digit_7.toml", "sample": "forget_random_10pct.toml", "moons": "moons_neighbourhood.toml"}
TITLES = {"class": "digits, forget class 7", "sample": "digits, forget random 10%", "moons": "moons, forget 30 random"}
# the paper grid: the same scenario keys (so every section reads it unchanged), the papers' data and model
PAPER_PRESETS = {"class": "cifar10_forget_class.toml", "sample": "cifar10_forget_random_10pct.toml"}  # assets/papers
PAPER_TITLES = {"class": "CIFAR-10, forget class 0", "sample": "CIFAR-10, forget random 10%"}
SMALL = (dict(PRESETS), dict(TITLES))
def use_grid(name: str) -> Path:
    """Point the scenario files and titles at the grid's: the paper grid runs CIFAR-10 / ResNet-18 under the small
    grids' scenario keys ('class', 'sample'). Returns the folder holding the scenario configs."""
    paper = name == "paper"
    for table, small, big in ((PRESETS, SMALL[0], PAPER_PRESETS), (TITLES, SMALL[1], PAPER_TITLES)):
        table.clear()
        table.update(big if paper else small)
    return ROOT / "assets" / ("papers" if paper else "presets")


FEATURES = ("direct_diff", "sorted_diff", "direct_concat", "sorted_concat", "l2_distance")
MITIGATIONS = {"none": {}, "top-3": {"top_k": 3}, "top-1": {"top_k": 1}, "label only": {"label_only": True},
               "T = 10": {"temperature": 10.0}}
PRIOR_ATTACKS = ("mia_threshold", "mia_shadow", "lira")
NEGATIVES = 40  # leak, single deletion: test samples scored under each target retrain
TAU_CLAIM = 0.03  # RURK's radius of interest (L∞ on [0, 1] pixels)

# the names the report and its figures give the verdict's controls
CONTROL_NAMES = {"control: θ_o": "θ_o", "control: head-only": "θ_o, last layer retrained on D_r",
                 "control: retrain, other order": "held-out retrain (other order)",
                 "control: retrain, other init": "held-out retrain (other init)"}


@dataclass
class Grid:
    """What one sweep runs. `full()` and `quick()` are the two grids the report may be made with."""

    name: str
    seeds: list[int]
    scenarios: list[str]
    methods: list[str]  # unlearning methods besides retrain
    epochs: dict[str, int] = field(default_factory=dict)  # per scenario, overrides the preset's recipe
    n_shadows: int = 8  # LiRA / threshold / Shokri shadows (official ReA code: 8)
    leak_shadow: int = 8  # leak: shadow originals
    leak_deletions: int = 8  # leak: single deletions per shadow original (retrain)
    leak_group_deletions: int = 4  # leak: group deletions per shadow original
    leak_approx_shadow: int = 4  # leak: shadow originals for approximate methods (each deletion is unlearned
    #                              with the method itself, one model at a time)
    leak_methods: list[str] = field(default_factory=lambda: ["finetune", "neggrad_plus", "scrub"])
    single_targets: int = 24  # leak, single deletion: target retrains, each without one forget sample
    rea_draws: int = 5
    rea_lrs: int = 3
    n_order: int = 2  # verdict yardstick: retrains differing in data order
    n_init: int = 2  # ... and in initialisation
    rurk_radii: int = 5
    rurk_random: int = 8
    pgd_steps: int = 10
    mitigations: list[str] = field(default_factory=lambda: list(MITIGATIONS))  # leak, single deletion
    quality_n: int = 32  # forgetting quality: models per pool (F is only comparable at equal N)

    @classmethod
    def full(cls) -> "Grid":
        from core.unlearn import methods

        return cls("full", [0, 1, 2, 3, 4], ["class", "sample", "moons"],
                   sorted(n for n in methods.names() if n != "retrain"))

    @classmethod
    def quick(cls) -> "Grid":
        return cls("quick", [0], ["class", "sample", "moons"],
                   ["finetune", "neggrad_plus", "ssd", "orthogonal_replay", "rurk"],
                   epochs={"class": 8, "sample": 8, "moons": 10}, n_shadows=4, leak_shadow=4, leak_deletions=4,
                   leak_group_deletions=2, leak_approx_shadow=2, leak_methods=["finetune"], single_targets=6, rea_draws=2, rea_lrs=1,
                   n_order=2, n_init=2, rurk_radii=3, rurk_random=2, pgd_steps=2,
                   mitigations=["none", "label only"], quality_n=4)

    @classmethod
    def paper(cls) -> "Grid":
        """The papers' setting (assets/papers): CIFAR-10 / ResNet-18, forget class 0 and a random 10%, every method;
        16 shadow models (LiRA's minimum), attack sizes cut where each point is a ResNet-18 retrain. On a GPU:
        θ_o, θ_r and each retrain about 30 epochs of CIFAR-10 each."""
        from core.unlearn import methods

        return cls("paper", [0], ["class", "sample"], sorted(n for n in methods.names() if n != "retrain"),
                   n_shadows=16, leak_shadow=4, leak_deletions=4, leak_group_deletions=2, leak_approx_shadow=2,
                   single_targets=8, rea_draws=3, rea_lrs=3, n_order=2, n_init=2, rurk_radii=5, rurk_random=4,
                   pgd_steps=10)



def scenario_config(scenario: str, seed: int, grid: Grid):
    """The preset's config with the sweep's seed, methods and (quick grid) epochs."""
    from core.config import from_dict, load_config

    d = load_config(use_grid(grid.name) / PRESETS[scenario]).to_dict()
    d["seed"] = int(seed)
    d["methods"] = [{"name": n} for n in ["retrain", *grid.methods]]
    if scenario in grid.epochs:
        d["recipe"]["epochs"] = grid.epochs[scenario]
    return from_dict(d)
