"""Residue's engine: data, models, training, unlearning, attacks and residual probes. No UI here."""
from .config import ExperimentConfig, MethodConfig, from_dict, load_config, loads
from .errors import Cancelled, ResidueError
from .experiment import Experiment, run
from .progress import Event, Progress
from .results import Results

__all__ = ["Cancelled", "Event", "Experiment", "ExperimentConfig", "MethodConfig", "Progress", "ResidueError",
           "Results", "from_dict", "load_config", "loads", "run"]
