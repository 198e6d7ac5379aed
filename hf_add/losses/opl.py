"""Orthogonal Projection Loss (Ranasinghe et al. 2021): a baseline of the paper's Table 2."""

from __future__ import annotations

import torch

from hf_add.losses.base import EmbeddingLoss
from hf_add.losses.normalization import full_precision
from hf_add.losses.pair_moments import pair_sets

OPL_CITATION = """@inproceedings{ranasinghe2021orthogonal,
  title     = {Orthogonal Projection Loss},
  author    = {Ranasinghe, Kanchana and Naseer, Muzammal and Hayat, Munawar and Khan, Salman and Khan, Fahad Shahbaz},
  booktitle = {Proceedings of the IEEE/CVF International Conference on Computer Vision},
  pages     = {12333--12343},
  year      = {2021}
}"""


class OrthogonalProjectionLoss(EmbeddingLoss):
    """Orthogonal Projection Loss: same-class embeddings parallel, different-class ones orthogonal.

    L = w · [(1 - mean_{y_i = y_j, i≠j} cos(z_i, z_j)) + γ · mean_{y_i ≠ y_j} |cos(z_i, z_j)|], added to
    cross-entropy. A term whose pair set is empty contributes 0.

    Args:
        gamma: weight γ of the negative-pair term. Default 0.5 (the OPL authors' recommendation; the ADD
            authors' Table 2 runs used γ = 2 with the whole loss weighted 0.1).
        weight: w, the weight of the whole loss relative to cross-entropy. Default 1.
        eps: floor of the embedding norm when normalising (see ``ADDLoss``). Default 1e-6.
        validate: check label values and embeddings for NaN (see ``ADDLoss``). Default True.

    Inputs: ``embeddings`` (B, k) and class ids (B,). OPL has no soft-label form.

    References:
        Ranasinghe, Naseer, Hayat, Khan, Khan. "Orthogonal Projection Loss". ICCV 2021.

    Example::

        >>> OrthogonalProjectionLoss(gamma=0.5)(torch.randn(4, 8), torch.tensor([0, 0, 1, 1]))
    """

    citation = OPL_CITATION

    def __init__(self, gamma: float = 0.5, weight: float = 1.0, eps: float = 1e-6, validate: bool = True):
        super().__init__(eps=eps, validate=validate)
        self.gamma = self.check_weight("gamma", gamma)
        self.weight = self.check_weight("weight", weight)

    def statistics(
        self, embeddings: torch.Tensor, labels: torch.Tensor, num_classes: int | None = None
    ) -> dict[str, torch.Tensor]:
        """Mean positive cosine and mean |negative cosine| (0 for an empty set), with pair counts."""
        unit, soft = self.prepare(embeddings, labels, num_classes)
        if soft:
            raise ValueError(
                "OrthogonalProjectionLoss needs class ids of shape (batch_size,); it has no soft-label "
                "form (use ADDLoss for mixup targets)"
            )
        with full_precision(embeddings.device):
            cosine = unit @ unit.T
            positives, negatives = pair_sets(None, labels, unit.shape[0], unit.device)
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

    def get_config_dict(self) -> dict:
        return {"gamma": self.gamma, "weight": self.weight, "eps": self.eps}
