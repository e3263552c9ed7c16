"""Data registry: `load_dataset(name, **options)`; every loader returns a validated `Dataset`."""
from . import builtin, files, images  # noqa: F401  (registers the loaders)
from .base import (Dataset, ForgetSpec, Split, datasets, display_pixels, load_dataset, make_split,
                   validate_arrays)

__all__ = ["Dataset", "ForgetSpec", "Split", "datasets", "display_pixels", "load_dataset", "make_split",
           "validate_arrays"]
