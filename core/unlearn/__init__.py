"""Unlearning registry. Importing this package registers every method file in it."""
import importlib
import pkgutil

from .base import Loop, Method, Param, UnlearnResult, UnlearnTask, get_method, methods, register

for _m in pkgutil.iter_modules(__path__):
    if _m.name != "base":
        importlib.import_module(f"{__name__}.{_m.name}")

__all__ = ["Loop", "Method", "Param", "UnlearnResult", "UnlearnTask", "get_method", "methods", "register"]
