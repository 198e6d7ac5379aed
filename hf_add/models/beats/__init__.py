"""BEATs (Chen et al. 2022) as a Hugging Face model, registered with the Auto classes on import."""

from transformers import AutoConfig, AutoFeatureExtractor, AutoModel, AutoModelForAudioClassification

from .configuration_beats import BeatsConfig
from .convert_beats_checkpoint import convert_beats_checkpoint, convert_official_key
from .feature_extraction_beats import BeatsFeatureExtractor
from .modeling_beats import (
    BeatsForAudioClassification,
    BeatsModel,
    BeatsPreTrainedModel,
    downsample_padding_mask,
)

AutoConfig.register(BeatsConfig.model_type, BeatsConfig, exist_ok=True)
AutoModel.register(BeatsConfig, BeatsModel, exist_ok=True)
AutoModelForAudioClassification.register(BeatsConfig, BeatsForAudioClassification, exist_ok=True)
AutoFeatureExtractor.register(BeatsConfig, BeatsFeatureExtractor, exist_ok=True)

# save_pretrained then writes `auto_map` and copies the code, so a pushed repo loads with trust_remote_code=True.
BeatsConfig.register_for_auto_class()
BeatsModel.register_for_auto_class("AutoModel")
BeatsForAudioClassification.register_for_auto_class("AutoModelForAudioClassification")
BeatsFeatureExtractor.register_for_auto_class("AutoFeatureExtractor")

__all__ = [
    "BeatsConfig",
    "BeatsFeatureExtractor",
    "BeatsForAudioClassification",
    "BeatsModel",
    "BeatsPreTrainedModel",
    "convert_beats_checkpoint",
    "convert_official_key",
    "downsample_padding_mask",
]
