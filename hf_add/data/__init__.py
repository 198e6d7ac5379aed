"""From a Hub dataset or an audio folder to ADDTrainer batches: presets with the paper's protocols, features,
augmentation."""

from .audio import SAMPLING_RATE, decode_and_check
from .collator import AudioClassificationCollator, AugmentationSwitch
from .features import NAMED_CONFIGS, adapt_ast_max_length, load_model_and_extractor, model_type_of
from .presets import (
    PRESETS,
    DatasetSpec,
    Fold,
    attach_labels,
    get_spec,
    make_folds,
)

__all__ = [
    "NAMED_CONFIGS",
    "PRESETS",
    "SAMPLING_RATE",
    "AudioClassificationCollator",
    "AugmentationSwitch",
    "DatasetSpec",
    "Fold",
    "adapt_ast_max_length",
    "attach_labels",
    "decode_and_check",
    "get_spec",
    "load_model_and_extractor",
    "make_folds",
    "model_type_of",
]
