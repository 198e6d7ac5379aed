"""From a Hub dataset or an audio folder to ADDTrainer batches: presets with the paper's protocols, audio checks,
features, augmentation and class-balanced batches."""

from hf_add.data.audio import SAMPLING_RATE, decode_and_check
from hf_add.data.collator import AudioClassificationCollator, AugmentationSwitch
from hf_add.data.presets import (
    PRESETS,
    DatasetSpec,
    Fold,
    attach_labels,
    get_spec,
    make_folds,
)

__all__ = [
    "PRESETS",
    "SAMPLING_RATE",
    "AudioClassificationCollator",
    "AugmentationSwitch",
    "DatasetSpec",
    "Fold",
    "attach_labels",
    "decode_and_check",
    "get_spec",
    "make_folds",
]
