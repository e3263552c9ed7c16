"""Attack registry. Importing this package registers every attack file in it."""
import importlib
import pkgutil

from .base import Attack, AttackContext, AttackResult, attacks, get_attack, register
from .roc import Roc, summarize

for _m in pkgutil.iter_modules(__path__):
    if _m.name not in ("base", "roc"):
        importlib.import_module(f"{__name__}.{_m.name}")



def clear_memos() -> None:
    """Forget every result the attacks keep in this process (shadow models, the leak attack's shadow posteriors,
    relearning runs; the disk cache is untouched): the next run computes afresh, as a new process would."""
    from . import leak, reminiscence_class, shadow

    shadow.clear_memo()
    leak._CACHE.clear()
    with reminiscence_class._RUNS_LOCK:
        reminiscence_class._RUNS.clear()


__all__ = ["Attack", "AttackContext", "AttackResult", "Roc", "attacks", "clear_memos", "get_attack", "register",
           "summarize"]
