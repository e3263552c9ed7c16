"""The whole analysis of a run, for the dashboard, the command line and scripts alike.

`base`: the registry of analyses, the `Run` that memoises them and the on-disk result cache;
`standard`: the analyses "Run everything" runs (import it to register them: `import core.analysis.standard`);
`pipeline`: "Run everything" itself, and results folders (save, load).
"""
from .base import (ANALYSES, Analysis, EngineMissing, LRU, Run, analysis, available, cached_analysis, is_default,
                   methods, register, resolved, settings_text)
from .pipeline import Pipeline, analyse, load, pending, save, summarise

__all__ = ["ANALYSES", "Analysis", "EngineMissing", "LRU", "Run", "analysis", "available", "cached_analysis",
           "is_default", "methods", "register", "resolved", "settings_text", "Pipeline", "analyse", "load", "pending",
           "save", "summarise"]
