"""The classification losses ADDTrainer computes from the logits: softmax CE and sigmoid BCE.

Both accept class ids (B,) or class probabilities / multi-hot rows (B, C), and run in float32 under
autocast. FocalLoss (focal.py) is the third, with the same call convention. Each takes ``label_smoothing``
ε, which ``ADDTrainer`` sets from ``TrainingArguments.label_smoothing_factor``: softmax losses move ε of
the target mass to the uniform distribution over the C classes (``F.cross_entropy(label_smoothing=ε)``,
as Trainer's ``LabelSmoother``; for probability targets t: (1 - ε)·t + ε/C); sigmoid BCE smooths every
binary target towards 1/2 ((1 - ε)·t + ε/2), the usual form for multi-label tagging.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from hf_add.losses.validation import check_label_smoothing


class CrossEntropy(nn.Module):
    """Softmax cross-entropy against class ids (B,) or probability targets (B, C) from mixup."""

    def __init__(self, label_smoothing: float = 0.0):
        super().__init__()
        self.label_smoothing = check_label_smoothing(label_smoothing)

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        targets = labels.float() if labels.dim() == 2 else labels
        return F.cross_entropy(logits.float(), targets, label_smoothing=self.label_smoothing)

    def get_config_dict(self) -> dict:
        return {"label_smoothing": self.label_smoothing} if self.label_smoothing else {}


class SoftTargetBCEWithLogits(nn.Module):
    """Sigmoid BCE against class ids, probability targets (the ADD authors' choice for mixup runs) or
    multi-hot rows (multi-label tagging)."""

    def __init__(self, label_smoothing: float = 0.0):
        super().__init__()
        self.label_smoothing = check_label_smoothing(label_smoothing)

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        targets = labels.float() if labels.dim() == 2 else F.one_hot(labels, logits.shape[-1]).float()
        if self.label_smoothing:
            targets = targets * (1.0 - self.label_smoothing) + self.label_smoothing / 2
        return F.binary_cross_entropy_with_logits(logits.float(), targets)

    def get_config_dict(self) -> dict:
        return {"label_smoothing": self.label_smoothing} if self.label_smoothing else {}


CLASSIFICATION_LOSSES = {"ce": CrossEntropy, "bce": SoftTargetBCEWithLogits}


def build_classification_loss(spec: str | nn.Module, label_smoothing: float = 0.0) -> nn.Module:
    """``"ce"``, ``"bce"`` or a loss module (e.g. ``FocalLoss(gamma=2.0)``) as a module, with
    ``label_smoothing`` (Trainer's ``label_smoothing_factor``) applied.

    A module built with its own non-zero ``label_smoothing`` keeps it when ``label_smoothing`` is 0; two
    different non-zero values, or smoothing asked of a module that has no ``label_smoothing``, are errors
    rather than a silently unsmoothed loss.
    """
    label_smoothing = check_label_smoothing(label_smoothing)
    if isinstance(spec, str):
        if spec not in CLASSIFICATION_LOSSES:
            raise ValueError(
                f"classification_loss must be one of {sorted(CLASSIFICATION_LOSSES)} or a loss module such as "
                f"FocalLoss(gamma=2.0), got {spec!r}"
            )
        return CLASSIFICATION_LOSSES[spec](label_smoothing=label_smoothing)
    if not isinstance(spec, nn.Module):
        raise ValueError(f"classification_loss must be a name or an nn.Module, got {type(spec).__name__}")
    if not label_smoothing:
        return spec
    own = getattr(spec, "label_smoothing", None)
    if own is None:
        raise ValueError(
            f"label_smoothing_factor={label_smoothing:g} cannot be applied to {type(spec).__name__}, which has no "
            "label_smoothing attribute; set label_smoothing_factor=0 and smooth inside your loss"
        )
    if own and own != label_smoothing:
        raise ValueError(
            f"{type(spec).__name__}(label_smoothing={own:g}) and label_smoothing_factor={label_smoothing:g} "
            "disagree; set one of them"
        )
    spec.label_smoothing = label_smoothing
    return spec
