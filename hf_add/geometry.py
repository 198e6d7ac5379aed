"""Embedding geometry of a labelled set: the quantities of the paper's Figure 5."""

from __future__ import annotations

from dataclasses import dataclass

import torch

# The scalar summaries of ``embedding_geometry``, in the order tables and logs show them.
GEOMETRY_SUMMARIES = (
    "intra_class_mean_distance",
    "intra_class_cv",
    "inter_class_mean_distance",
    "inter_class_pair_cv",
    "inter_class_cv",
)


@dataclass(frozen=True)
class EmbeddingGeometry:
    """The result of ``embedding_geometry``: per class-pair matrices (C, C) and their five summaries."""

    mean_distance: torch.Tensor
    cv_distance: torch.Tensor
    pair_counts: torch.Tensor
    intra_class_mean_distance: float
    intra_class_cv: float
    inter_class_mean_distance: float
    inter_class_pair_cv: float
    inter_class_cv: float

    def summaries(self) -> dict[str, float]:
        """The five scalar summaries by name (NaN where undefined), in GEOMETRY_SUMMARIES order."""
        return {name: getattr(self, name) for name in GEOMETRY_SUMMARIES}


@torch.no_grad()
def embedding_geometry(
    embeddings: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int | None = None,
    chunk_size: int = 512,
    eps: float = 1e-6,
) -> EmbeddingGeometry:
    """Mean and coefficient of variation of the cosine distance d = 1 - cos between classes.

    For every pair of classes (a, b), over the ordered pairs (i, j) with y_i = a, y_j = b and i ≠ j:
    ``mean_distance[a, b]`` is the mean of d and ``cv_distance[a, b]`` its sample std divided by that
    mean (σ/μ). The diagonal describes each class (intra-class clustering and equidistance), the rest
    the class pairs (inter-class separation and equidistance). Cells without enough pairs are NaN: a mean
    needs one pair, a CV two distinct distances (so a class of two samples has no intra-class CV).

    Summaries (``EmbeddingGeometry`` fields, plain floats; NaN cells are skipped):

    - ``intra_class_mean_distance``: mean of the diagonal of ``mean_distance`` (lower = clustered),
    - ``intra_class_cv``: mean of the diagonal of ``cv_distance`` (lower = intra-class equidistant),
    - ``inter_class_mean_distance``: mean of ``mean_distance`` over a < b (higher = separated),
    - ``inter_class_pair_cv``: mean of ``cv_distance`` over a < b,
    - ``inter_class_cv``: CV of ``mean_distance`` across class pairs a < b (lower = the classes are
      more equally spaced: the inter-class equidistance).

    Rows are processed ``chunk_size`` at a time with float64 accumulators, so memory is
    O(chunk_size · N + C²): 50k embeddings need a few hundred MB.

    Args:
        embeddings: (N, k) float tensor.
        labels: (N,) class ids.
        num_classes: C; defaults to ``labels.max() + 1``.

    Example::

        >>> geometry = embedding_geometry(torch.randn(100, 16), torch.arange(100) % 5)
        >>> geometry.mean_distance.shape
        torch.Size([5, 5])
    """
    if embeddings.dim() != 2 or labels.dim() != 1 or labels.shape[0] != embeddings.shape[0]:
        raise ValueError(
            f"expected embeddings (N, k) and class ids (N,), got {tuple(embeddings.shape)} and "
            f"{tuple(labels.shape)}"
        )
    if labels.is_floating_point():
        raise ValueError(f"labels must be integer class ids, got dtype {labels.dtype}")
    labels = labels.long()
    if num_classes is None:
        num_classes = int(labels.max()) + 1 if labels.numel() else 0
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        raise ValueError(
            f"class ids must lie in [0, {num_classes}), got [{int(labels.min())}, {int(labels.max())}]"
        )

    z = embeddings.float()
    unit = z / torch.linalg.vector_norm(z, dim=1, keepdim=True).clamp_min(eps)
    one_hot = torch.nn.functional.one_hot(labels, num_classes).to(torch.float64)
    sums = torch.zeros(num_classes, num_classes, dtype=torch.float64, device=z.device)
    squares = torch.zeros_like(sums)
    for start in range(0, unit.shape[0], chunk_size):
        rows = slice(start, start + chunk_size)
        distance = (1.0 - unit[rows] @ unit.T).double()
        # drop the i == j entries of this chunk before summing per class pair
        distance.diagonal(offset=start).zero_()
        sums += one_hot[rows].T @ distance @ one_hot
        squares += one_hot[rows].T @ distance.square() @ one_hot

    class_sizes = one_hot.sum(dim=0)
    counts = class_sizes.unsqueeze(1) * class_sizes.unsqueeze(0) - torch.diag(class_sizes)
    mean = sums / counts
    variance = (squares - counts * mean.square()) / (counts - 1.0)
    std = variance.clamp_min(0.0).sqrt()
    mean = torch.where(counts > 0, mean, torch.nan)
    # A CV needs two distinct distances: two ordered pairs on the diagonal are one pair of samples, twice.
    distinct = counts / (1.0 + torch.eye(num_classes, dtype=counts.dtype, device=counts.device))
    cv = torch.where((distinct > 1) & (mean > 0), std / mean, torch.nan)

    upper = torch.triu(torch.ones_like(mean, dtype=torch.bool), diagonal=1)
    inter_means = mean[upper]
    inter_means = inter_means[~inter_means.isnan()]
    return EmbeddingGeometry(
        mean_distance=mean.float().cpu(),
        cv_distance=cv.float().cpu(),
        pair_counts=counts.long().cpu(),
        intra_class_mean_distance=_nanmean(mean.diagonal()),
        intra_class_cv=_nanmean(cv.diagonal()),
        inter_class_mean_distance=_nanmean(inter_means),
        inter_class_pair_cv=_nanmean(cv[upper]),
        inter_class_cv=float(inter_means.std() / inter_means.mean())
        if inter_means.numel() > 1
        else float("nan"),
    )


def _nanmean(values: torch.Tensor) -> float:
    return float(values.nanmean()) if values.numel() else float("nan")
