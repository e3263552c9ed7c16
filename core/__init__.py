"""Residue's engine: data, models, training, unlearning, attacks and residual probes. No UI here."""
import os

# OpenMP threads that busy-wait between torch's parallel regions spin against every other thread of the machine:
# the dashboard's job beside its page threads, a test suite beside a browser and a server, a shared CI runner.
# Measured on the default preset's "Run everything" with two other processes busy on 2 cores: 134 s spinning,
# 40 s with PASSIVE. It must be set before torch starts its OpenMP runtime, so here, before anything imports
# torch; a value the user set wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from .config import ExperimentConfig, MethodConfig, from_dict, load_config, loads
from .errors import Cancelled, ResidueError
from .experiment import Experiment, run
from .progress import Event, Progress
from .results import Results

__all__ = ["Cancelled", "Event", "Experiment", "ExperimentConfig", "MethodConfig", "Progress", "ResidueError",
           "Results", "from_dict", "load_config", "loads", "run"]
