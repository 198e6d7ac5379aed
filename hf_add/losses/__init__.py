"""Losses: ADD (the paper's), the baselines it is compared with (Focal, OPL), and the classification losses.

Every embedding loss derives from ``EmbeddingLoss``; write your own by subclassing it.
"""

from hf_add.losses.add import ADDLoss, add_statistics
from hf_add.losses.base import EmbeddingLoss
from hf_add.losses.classification import CrossEntropy, SoftTargetBCEWithLogits
from hf_add.losses.focal import FocalLoss
from hf_add.losses.opl import OrthogonalProjectionLoss
from hf_add.losses.registry import build_classification_loss, build_loss, describe_loss

__all__ = [
    "ADDLoss",
    "CrossEntropy",
    "EmbeddingLoss",
    "FocalLoss",
    "OrthogonalProjectionLoss",
    "SoftTargetBCEWithLogits",
    "add_statistics",
    "build_loss",
    "build_classification_loss",
    "describe_loss",
]
