"""hf-add: the Angular Distance Distribution (ADD) loss for audio classification with Hugging Face."""

from hf_add.geometry import embedding_geometry
from hf_add.losses import ADDLoss, FocalLoss, OrthogonalProjectionLoss, add_statistics

__version__ = "0.1.0"

__all__ = [
    "ADDLoss",
    "FocalLoss",
    "OrthogonalProjectionLoss",
    "add_statistics",
    "embedding_geometry",
]
