"""From a Hub dataset or an audio folder to ADDTrainer batches: presets with the paper's protocols, audio checks,
features, augmentation, class-balanced batches, and streams larger than a disk."""

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
from hf_add.data.streaming import StreamingClips, StreamingLabels

__all__ = [
    "PRESETS",
    "SAMPLING_RATE",
    "AudioClassificationCollator",
    "AugmentationSwitch",
    "DatasetSpec",
    "Fold",
    "StreamingClips",
    "StreamingLabels",
    "attach_labels",
    "decode_and_check",
    "get_spec",
    "make_folds",
]
