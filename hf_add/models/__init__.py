"""Model ports; importing registers them with the transformers Auto classes."""

from hf_add.models.beats import BeatsConfig, BeatsFeatureExtractor, BeatsForAudioClassification, BeatsModel

__all__ = ["BeatsConfig", "BeatsFeatureExtractor", "BeatsForAudioClassification", "BeatsModel"]
