"""Orthogonal Projection Loss (Ranasinghe et al. 2021): a baseline of the paper's Table 2."""

from __future__ import annotations

import torch
from torch import nn

from hf_add.losses.pair_moments import pair_sets
from hf_add.losses.validation import check_embeddings_and_labels

OPL_CITATION = """@inproceedings{ranasinghe2021orthogonal,
  title     = {Orthogonal Projection Loss},
  author    = {Ranasinghe, Kanchana and Naseer, Muzammal and Hayat, Munawar and Khan, Salman and Khan, Fahad Shahbaz},
  booktitle = {Proceedings of the IEEE/CVF International Conference on Computer Vision},
  pages     = {12333--12343},
  year      = {2021}
}"""


class OrthogonalProjectionLoss(nn.Module):
    """Orthogonal Projection Loss: same-class embeddings parallel, different-class ones orthogonal.

    L = w · [(1 - mean_{y_i = y_j, i≠j} cos(z_i, z_j)) + γ · mean_{y_i ≠ y_j} |cos(z_i, z_j)|], added to
    cross-entropy. A term whose pair set is empty contributes 0.

    Args:
        gamma: weight γ of the negative-pair term. Default 0.5 (the OPL authors' recommendation; the ADD
            authors' Table 2 runs used γ = 2 with the whole loss weighted 0.1).
        weight: w, the weight of the whole loss relative to cross-entropy. Default 1.
        eps: floor of the embedding norm when normalising. Default 1e-6.
        validate: check label values and embeddings for NaN (one host sync). Default True.

    Inputs: ``embeddings`` (B, k) and class ids (B,). OPL has no soft-label form.

    References:
        Ranasinghe, Naseer, Hayat, Khan, Khan. "Orthogonal Projection Loss". ICCV 2021.

    Example::

        >>> OrthogonalProjectionLoss(gamma=0.5)(torch.randn(4, 8), torch.tensor([0, 0, 1, 1]))
    """

    def __init__(self, gamma: float = 0.5, weight: float = 1.0, eps: float = 1e-6, validate: bool = True):
        super().__init__()
        for name, value in [("gamma", gamma), ("weight", weight)]:
            if not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"{name} must be a non-negative number, got {value!r}")
        self.gamma = float(gamma)
        self.weight = float(weight)
        self.eps = eps
        self.validate = validate

    def statistics(
        self, embeddings: torch.Tensor, labels: torch.Tensor, num_classes: int | None = None
    ) -> dict[str, torch.Tensor]:
        """Mean positive cosine and mean |negative cosine| (0 for an empty set), with pair counts."""
        soft = check_embeddings_and_labels(
            embeddings, labels, num_classes=num_classes, validate=self.validate
        )
        if soft:
            raise ValueError(
                "OrthogonalProjectionLoss needs class ids of shape (batch_size,); it has no soft-label "
                "form (use ADDLoss for mixup targets)"
            )
        with torch.autocast(device_type=embeddings.device.type, enabled=False):
            z = embeddings.to(torch.promote_types(embeddings.dtype, torch.float32))
            unit = z / torch.linalg.vector_norm(z, dim=1, keepdim=True).clamp_min(self.eps)
            cosine = unit @ unit.T
            positives, negatives = pair_sets(None, labels, z.shape[0], z.device)
            num_positive = positives.sum(dtype=cosine.dtype)
            num_negative = negatives.sum(dtype=cosine.dtype)
            positive_cosine = torch.where(positives, cosine, 0.0).sum() / num_positive.clamp_min(1.0)
            negative_cosine = torch.where(negatives, cosine.abs(), 0.0).sum() / num_negative.clamp_min(1.0)
        return {
            "positive_term": torch.where(num_positive > 0, 1.0 - positive_cosine, 0.0),
            "negative_abs_cosine": negative_cosine,
            "num_positive_pairs": num_positive,
            "num_negative_pairs": num_negative,
        }

    def loss_from_statistics(self, stats: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.weight * (stats["positive_term"] + self.gamma * stats["negative_abs_cosine"])

    def forward(
        self, embeddings: torch.Tensor, labels: torch.Tensor, num_classes: int | None = None
    ) -> torch.Tensor:
        return self.loss_from_statistics(self.statistics(embeddings, labels, num_classes))

    def get_config_dict(self) -> dict:
        return {"gamma": self.gamma, "weight": self.weight, "eps": self.eps}

    @property
    def citation(self) -> str:
        return OPL_CITATION

    def extra_repr(self) -> str:
        return f"gamma={self.gamma}, weight={self.weight}"
