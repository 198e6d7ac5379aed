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
