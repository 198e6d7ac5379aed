"""The classification losses ADDTrainer computes from the logits: softmax CE and sigmoid BCE.

Both accept class ids (B,) or class probabilities (B, C) from mixup, and run in float32 under autocast.
FocalLoss (focal.py) is the third, with the same call convention.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class CrossEntropy(nn.Module):
    """Softmax cross-entropy against class ids (B,) or probability targets (B, C) from mixup."""

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits.float(), labels.float() if labels.dim() == 2 else labels)

    def get_config_dict(self) -> dict:
        return {}


class SoftTargetBCEWithLogits(nn.Module):
    """Sigmoid BCE against class ids or probability targets (the ADD authors' choice for mixup runs)."""

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        targets = labels.float() if labels.dim() == 2 else F.one_hot(labels, logits.shape[-1]).float()
        return F.binary_cross_entropy_with_logits(logits.float(), targets)

    def get_config_dict(self) -> dict:
        return {}


CLASSIFICATION_LOSSES = {"ce": CrossEntropy, "bce": SoftTargetBCEWithLogits}


def build_classification_loss(spec: str | nn.Module) -> nn.Module:
    """``"ce"``, ``"bce"`` or a loss module (e.g. ``FocalLoss(gamma=2.0)``) as a module."""
    if isinstance(spec, nn.Module):
        return spec
    if spec in CLASSIFICATION_LOSSES:
        return CLASSIFICATION_LOSSES[spec]()
    raise ValueError(
        f"classification_loss must be one of {sorted(CLASSIFICATION_LOSSES)} or a loss module such as "
        f"FocalLoss(gamma=2.0), got {spec!r}"
    )
