"""Focal loss (Lin et al. 2017), multi-class softmax form: a baseline of the paper's Table 2."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from hf_add.losses.validation import check_label_smoothing, check_weight

FOCAL_CITATION = """@inproceedings{lin2017focal,
  title     = {Focal Loss for Dense Object Detection},
  author    = {Lin, Tsung-Yi and Goyal, Priya and Girshick, Ross and He, Kaiming and Doll{\\'a}r, Piotr},
  booktitle = {Proceedings of the IEEE International Conference on Computer Vision},
  year      = {2017}
}"""


class FocalLoss(nn.Module):
    """Focal loss: cross-entropy with each class term down-weighted by (1 - p_c)^γ.

    FL = -Σ_c y_c (1 - p_c)^γ log p_c, averaged over the batch, with p = softmax(logits). Well-classified
    samples (p_t → 1) contribute little, so training focuses on hard ones. γ = 0 is cross-entropy.
    It replaces cross-entropy (it is a classification loss, not an embedding loss).

    Args:
        gamma: focusing parameter γ ≥ 0. Default 2 (the usual value; the ADD paper does not state it).
        label_smoothing: ε in [0, 1): the targets become (1 - ε)·y + ε/C, as for cross-entropy (set by
            ``ADDTrainer`` from ``label_smoothing_factor``).

    Inputs: ``logits`` (B, C) and ``labels``: class ids (B,) or class probabilities (B, C); the formula
    is linear in y, so soft targets (mixup) are well defined.

    References:
        Lin, Goyal, Girshick, He, Dollár. "Focal Loss for Dense Object Detection". ICCV 2017.

    Example::

        >>> FocalLoss(gamma=2.0)(torch.randn(4, 3), torch.tensor([0, 2, 1, 0]))
    """

    citation = FOCAL_CITATION

    def __init__(self, gamma: float = 2.0, label_smoothing: float = 0.0):
        super().__init__()
        self.gamma = check_weight("gamma", gamma)
        self.label_smoothing = check_label_smoothing(label_smoothing)

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if logits.dim() != 2:
            raise ValueError(f"logits must have shape (batch_size, num_classes), got {tuple(logits.shape)}")
        if labels.dim() == 1:
            if labels.is_floating_point():
                raise ValueError(f"class-id labels must have an integer dtype, got {labels.dtype}")
            targets = F.one_hot(labels, logits.shape[1]).to(torch.float32)
        elif labels.shape == logits.shape:
            targets = labels.float()
        else:
            raise ValueError(
                f"labels must be class ids (B,) or probabilities (B, C) matching logits {tuple(logits.shape)}, "
                f"got {tuple(labels.shape)}"
            )
        if self.label_smoothing:
            targets = targets * (1.0 - self.label_smoothing) + self.label_smoothing / logits.shape[1]
        log_probs = F.log_softmax(logits.float(), dim=-1)
        if self.gamma > 0:  # (1 - p)^0 would give a 0 * inf gradient at p = 1
            log_probs = log_probs * (1.0 - log_probs.exp()).clamp_min(0.0).pow(self.gamma)
        return -(targets * log_probs).sum(dim=-1).mean()

    def get_config_dict(self) -> dict:
        config = {"gamma": self.gamma}
        return {**config, "label_smoothing": self.label_smoothing} if self.label_smoothing else config

    def extra_repr(self) -> str:
        return f"gamma={self.gamma}" + (
            f", label_smoothing={self.label_smoothing}" if self.label_smoothing else ""
        )
