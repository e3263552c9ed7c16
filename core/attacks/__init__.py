"""Attack registry. Importing this package registers every attack file in it."""
import importlib
import pkgutil

from .base import Attack, AttackContext, AttackResult, attacks, get_attack, register
from .roc import Roc, summarize

for _m in pkgutil.iter_modules(__path__):
    if _m.name not in ("base", "roc"):
        importlib.import_module(f"{__name__}.{_m.name}")

__all__ = ["Attack", "AttackContext", "AttackResult", "Roc", "attacks", "get_attack", "register", "summarize"]
