"""Model registry: `build_model(name, input_shape, n_classes, seed, **params)`."""
from . import airbench, cnn, mlp, resnet, vgg  # noqa: F401  (registers the architectures)
from .base import (Classifier, build_model, check_model_options, check_state_dict, init_weights, load_checkpoint,
                   models)

__all__ = ["Classifier", "build_model", "check_model_options", "check_state_dict", "init_weights", "load_checkpoint",
           "models"]
