"""First and second moments of per-pair values over masked sets of ordered embedding pairs.

This is the numerical core that ADD (paper eq. 1-8) needs. It works on one (B, B) Gram matrix of
unit-normalised embeddings, selects pair sets with broadcast masks and reduces them with masked sums
divided by counts: no boolean indexing, no host syncs, no Python loops over pairs, so it runs unchanged
under CUDA graphs and ``torch.compile(fullgraph=True)``.

A custom autograd Function keeps memory at one saved (B, B) matrix (the Gram matrix) instead of the
half-dozen that autograd would save for the element-wise chain, and its backward is a single fused
expression followed by one matmul. Empty or single-valued sets give exactly 0 with a zero gradient.
"""

from __future__ import annotations

import torch

# Two soft label vectors whose cosine distance is below this are "the same class" (paper §3.4).
SOFT_POSITIVE_THRESHOLD = 1e-3


def pair_sets(
    gram_labels: torch.Tensor | None, class_ids: torch.Tensor | None, batch_size: int, device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Boolean (B, B) masks of the two pair sets, diagonal excluded.

    Hard labels (``class_ids``): positives (same class) and negatives (different class).
    Soft labels (``gram_labels`` = Gram matrix of unit label vectors): positives (identical label
    vectors) and all ordered pairs.
    """
    off_diagonal = ~torch.eye(batch_size, dtype=torch.bool, device=device)
    if class_ids is not None:
        same = class_ids.unsqueeze(1) == class_ids.unsqueeze(0)
        return same & off_diagonal, ~same
    positives = (1.0 - gram_labels < SOFT_POSITIVE_THRESHOLD) & off_diagonal
    return positives, off_diagonal


def _values(gram: torch.Tensor, gram_labels: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-pair values of the two sets and their derivatives w.r.t. the Gram entry.

    Set 1 (positives, both forms): d² = (1 - g)².
    Set 2, hard form: (1 - d)² = g² (eq. 2). Soft form: (d^y - d)² = (g - g^y)² (eq. 7).
    """
    one_minus = 1.0 - gram
    residual = gram if gram_labels is None else gram - gram_labels
    return one_minus.square(), residual.square(), -2.0 * one_minus, 2.0 * residual


def _moments(values: torch.Tensor, mask: torch.Tensor, with_std: bool):
    """Mean and sample std of ``values`` over ``mask``; 0 where the set is too small."""
    count = mask.sum(dtype=values.dtype)
    mean = torch.where(mask, values, 0.0).sum() / count.clamp_min(1.0)
    if not with_std:
        return count, mean, torch.zeros_like(mean)
    variance = torch.where(mask, (values - mean).square(), 0.0).sum() / (count - 1.0).clamp_min(1.0)
    # sqrt has an infinite slope at 0: route variance == 0 around it so the gradient is exactly 0.
    positive = variance > 0
    std = torch.where(positive, torch.where(positive, variance, 1.0).sqrt(), 0.0)
    return count, mean, std


class PairMoments(torch.autograd.Function):
    """(mean₁, std₁, mean₂, std₂, count₁, count₂) of the two pair sets of a batch.

    Inputs: ``unit`` (B, k) unit-norm embeddings (float32 or float64); ``class_ids`` (B,) or ``unit_labels``
    (B, C) unit-norm label vectors of the same dtype. ``std2`` is only computed when ``need_std2``.
    """

    @staticmethod
    def forward(ctx, unit, class_ids, unit_labels, need_std2: bool):
        gram = unit @ unit.T
        gram_labels = None if unit_labels is None else unit_labels @ unit_labels.T
        positives, second = pair_sets(gram_labels, class_ids, unit.shape[0], unit.device)
        values1, values2, _, _ = _values(gram, gram_labels)
        count1, mean1, std1 = _moments(values1, positives, with_std=True)
        count2, mean2, std2 = _moments(values2, second, with_std=need_std2)
        ctx.save_for_backward(unit, gram, class_ids, unit_labels, mean1, std1, count1, mean2, std2, count2)
        ctx.mark_non_differentiable(count1, count2)
        return mean1, std1, mean2, std2, count1, count2

    @staticmethod
    def backward(ctx, g_mean1, g_std1, g_mean2, g_std2, _g_count1, _g_count2):
        unit, gram, class_ids, unit_labels, mean1, std1, count1, mean2, std2, count2 = ctx.saved_tensors
        gram_labels = None if unit_labels is None else unit_labels @ unit_labels.T
        positives, second = pair_sets(gram_labels, class_ids, unit.shape[0], unit.device)
        values1, values2, slope1, slope2 = _values(gram, gram_labels)
        # d mean / d v = 1/n ; d std / d v = (v - mean) / ((n - 1) std), on the set, 0 where undefined.
        # So dL/dv = a + b v with scalars a, b per set.
        a1, b1 = _linear_coefficients(g_mean1, g_std1, mean1, std1, count1)
        a2, b2 = _linear_coefficients(g_mean2, g_std2, mean2, std2, count2)
        grad_gram = torch.where(positives, (a1 + b1 * values1) * slope1, 0.0) + torch.where(
            second, (a2 + b2 * values2) * slope2, 0.0
        )
        # grad_gram is symmetric, and d(gram)/d(unit) contributes it twice.
        return 2.0 * (grad_gram @ unit), None, None, None


def _linear_coefficients(g_mean, g_std, mean, std, count):
    a = g_mean / count.clamp_min(1.0)
    b = torch.where(std > 0, g_std / ((count - 1.0).clamp_min(1.0) * torch.where(std > 0, std, 1.0)), 0.0)
    return a - b * mean, b
