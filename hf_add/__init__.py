"""hf-add: the Angular Distance Distribution (ADD) loss for audio classification with Hugging Face."""

from hf_add.geometry import EmbeddingGeometry, embedding_geometry
from hf_add.losses import ADDLoss, EmbeddingLoss, FocalLoss, OrthogonalProjectionLoss, add_statistics
from hf_add.models.beats import BeatsConfig, BeatsFeatureExtractor, BeatsForAudioClassification, BeatsModel
from hf_add.trainer import ADDTrainer

__version__ = "0.1.0"

__all__ = [
    "ADDLoss",
    "ADDTrainer",
    "BeatsConfig",
    "BeatsFeatureExtractor",
    "BeatsForAudioClassification",
    "BeatsModel",
    "EmbeddingGeometry",
    "EmbeddingLoss",
    "FocalLoss",
    "OrthogonalProjectionLoss",
    "add_statistics",
    "embedding_geometry",
]
