"""First and second moments of per-pair values over masked sets of ordered embedding pairs.

This is the numerical core that ADD (paper eq. 1-8) needs. It works on one (B, B) Gram matrix of
unit-normalised embeddings, selects pair sets with broadcast 0/1 weight matrices and reduces them with
dot products divided by counts: no boolean indexing, no host syncs, no Python loops over pairs, so it
runs unchanged under CUDA graphs and ``torch.compile(fullgraph=True)``.

A custom autograd Function keeps memory at one saved (B, B) matrix (the Gram matrix) instead of the
half-dozen that autograd would save for the element-wise chain, and its backward is a few in-place
element-wise passes followed by one matmul. Empty or single-valued sets give exactly 0 with a zero
gradient.
"""

from __future__ import annotations

import torch

from hf_add.losses.normalization import scale_safe_unit

# Two soft label vectors whose cosine distance is below this are "the same class" (paper §3.4).
SOFT_POSITIVE_THRESHOLD = 1e-3


def pair_sets(
    gram_labels: torch.Tensor | None, class_ids: torch.Tensor | None, batch_size: int, device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Boolean (B, B) masks of the two pair sets, diagonal excluded.

    Hard labels (``class_ids``): positives (same class) and negatives (different class).
    Soft labels (``gram_labels`` = Gram matrix of unit label vectors, zero rows for unlabelled samples):
    positives (identical label vectors) and all ordered pairs of labelled samples.
    """
    off_diagonal = ~torch.eye(batch_size, dtype=torch.bool, device=device)
    if class_ids is not None:
        same = class_ids.unsqueeze(1) == class_ids.unsqueeze(0)
        return same & off_diagonal, ~same
    positives = (1.0 - gram_labels < SOFT_POSITIVE_THRESHOLD) & off_diagonal
    labelled = gram_labels.diagonal() > 0.5
    return positives, labelled.unsqueeze(1) & labelled.unsqueeze(0) & off_diagonal


def unit_label_vectors(labels: torch.Tensor) -> torch.Tensor:
    """Label vectors (B, C) scaled to unit L2 norm (paper §3.4); a row of zeros stays zero (no label)."""
    return labels / torch.linalg.vector_norm(labels, dim=1, keepdim=True).clamp_min(
        torch.finfo(labels.dtype).tiny
    )


def count_positive_pairs(labels: torch.Tensor) -> torch.Tensor:
    """|D_p| of a batch as ADD counts it: ordered pairs of one class (class ids) or of identical label
    vectors (probabilities, e.g. mixup). A property of the batch, whatever the loss."""
    if labels.dim() == 1:
        positives, _ = pair_sets(None, labels, len(labels), labels.device)
    else:
        unit = unit_label_vectors(labels.float())
        positives, _ = pair_sets(unit @ unit.T, None, len(labels), labels.device)
    return positives.sum().float()


def _symmetric_gram(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """x xᵀ made exactly symmetric, and a spare (B, B) buffer.

    BLAS may round (i, j) and (j, i) differently, but the backward's ``grad_gram @ unit`` needs a
    symmetric gradient, and two equal ordered pairs must give σ = 0. (0.5·x) xᵀ is exactly half of
    x xᵀ; a contiguous transposed copy is several times faster than adding the strided view, and is
    then reused as scratch space (a fresh (B, B) allocation costs as much as a pass over it).
    """
    gram = (0.5 * x) @ x.T
    scratch = gram.T.contiguous()
    return gram.add_(scratch), scratch


def _set_weights(gram_labels, class_ids, batch_size, dtype, device) -> tuple[torch.Tensor, torch.Tensor]:
    """The two pair sets of ``pair_sets`` as flattened 0/1 matrices of ``dtype``: set sums are dot products."""
    first, second = pair_sets(gram_labels, class_ids, batch_size, device)
    return first.to(dtype).view(-1), second.to(dtype).view(-1)


def _moments(values: torch.Tensor, weights: torch.Tensor, with_std: bool):
    """Count, mean and sample std of flat ``values`` over the set (0 where the set is too small), and the
    divisors of the mean and the variance, which the backward reuses. Overwrites ``values``."""
    count = weights.sum()
    divisor = count.clamp_min(1.0)
    mean = torch.dot(values, weights) / divisor
    if not with_std:
        return count, mean, torch.zeros_like(mean), divisor, divisor
    # Autograd never sees this sqrt: the backward handles std == 0 (zero gradient, not sqrt's infinite one).
    variance_divisor = (count - 1.0).clamp_min(1.0)
    variance = torch.dot(values.sub_(mean).mul_(values), weights) / variance_divisor
    return count, mean, variance.sqrt(), divisor, variance_divisor


class PairMoments(torch.autograd.Function):
    """(mean₁, std₁, mean₂, std₂, count₁, count₂) of the two pair sets of a batch.

    Inputs: ``embeddings`` z (B, k), float32 or float64, with their ``row_maxima`` (see
    ``normalization.scale_safe_unit``: the function normalises them itself, so that autograd records one
    node instead of four, and differentiates through the normalisation by hand); ``class_ids`` (B,) or
    ``unit_labels`` (B, C) unit-norm label vectors of z's dtype. ``std2`` is only computed when ``need_std2``.

    Per-pair values: set 1 (positives, both forms) d² = (1 - g)²; set 2, hard form, (1 - d)² = g²
    (eq. 2), soft form (d^y - d)² = (g - g^y)² (eq. 7). Set sums are dot products with 0/1 weight
    matrices and the element-wise work runs in place in reused buffers: few passes over (B, B) matrices
    besides the two matmuls.
    """

    @staticmethod
    def forward(ctx, embeddings, row_maxima, class_ids, unit_labels, need_std2: bool, eps: float):
        unit, scales, norms = scale_safe_unit(embeddings, row_maxima, eps)
        gram, scratch = _symmetric_gram(unit)
        gram_labels = None if unit_labels is None else _symmetric_gram(unit_labels)[0]
        weights1, weights2 = _set_weights(gram_labels, class_ids, unit.shape[0], gram.dtype, gram.device)
        flat, scratch = gram.view(-1), scratch.view(-1)  # element-wise work and dot products are flat
        values = torch.sub(flat, 1.0, out=scratch)  # -(1 - g): same square
        count1, mean1, std1, *divisors1 = _moments(values.mul_(values), weights1, with_std=True)
        if gram_labels is None:
            values = torch.mul(flat, flat, out=scratch)
        else:
            values = torch.sub(flat, gram_labels.view(-1), out=scratch)
            values.mul_(values)
        count2, mean2, std2, *divisors2 = _moments(values, weights2, with_std=need_std2)
        ctx.save_for_backward(
            unit,
            scales,
            norms,
            gram,
            class_ids,
            unit_labels,
            mean1,
            std1,
            *divisors1,
            mean2,
            std2,
            *divisors2,
        )
        ctx.mark_non_differentiable(count1, count2)
        return mean1, std1, mean2, std2, count1, count2

    @staticmethod
    def backward(ctx, g_mean1, g_std1, g_mean2, g_std2, _g_count1, _g_count2):
        if torch.is_grad_enabled():  # backward(create_graph=True): a second derivative was asked for
            raise RuntimeError(
                "ADD's pair statistics have a hand-written first derivative only, so a second derivative "
                "(backward or autograd.grad with create_graph=True, e.g. for a gradient penalty) is not "
                "supported. Take the second-order term from a loss without ADD, or detach the ADD loss there."
            )
        unit, scales, norms, gram, class_ids, unit_labels, *moments = ctx.saved_tensors
        gram_labels = None if unit_labels is None else _symmetric_gram(unit_labels)[0]
        weights1, weights2 = _set_weights(gram_labels, class_ids, unit.shape[0], gram.dtype, gram.device)
        # d mean / d v = 1/n ; d std / d v = (v - mean) / ((n - 1) std), on the set, 0 where undefined.
        # So dL/dv = a + b v with scalars a, b per set; with v = r², dL/dg = 2 (a + b r²) r dr/dg.
        a1, b1 = _linear_coefficients(g_mean1, g_std1, *moments[:4])
        a2, b2 = _linear_coefficients(g_mean2, g_std2, *moments[4:])
        # Set 2: r = g or g - g^y, dr/dg = 1.
        flat = gram.view(-1)
        residual = flat if gram_labels is None else flat - gram_labels.view(-1)
        half_grad_gram = (residual * residual).mul_(b2).add_(a2).mul_(residual).mul_(weights2)
        # Set 1: r = 1 - g, dr/dg = -1; r' = g - 1 = -r, masked first so that weights1 can be reused.
        negated = torch.sub(flat, 1.0, out=weights2).mul_(weights1)
        term1 = torch.mul(negated, negated, out=weights1).mul_(b1).add_(a1).mul_(negated)
        half_grad_gram.add_(term1)
        # grad_gram = 2 · half_grad_gram is symmetric, and d(gram)/d(unit) contributes it twice: 4 · half @ unit
        # (addmm with beta = 0 ignores its first argument: one op instead of a matmul and a scaling).
        half_grad_gram = half_grad_gram.view_as(gram)
        grad_unit = torch.addmm(unit, half_grad_gram, unit, beta=0.0, alpha=4.0)
        # Through ẑ = (z / scale) / norm: the part of grad_unit orthogonal to ẑ, divided by norm and scale
        # (when the norm is floored at ε, ẑ = 0 and the projection is the identity, as it should be).
        radial = (grad_unit * unit).sum(dim=1, keepdim=True)
        grad_embeddings = grad_unit.sub_(unit * radial).div_(norms).div_(scales)
        return grad_embeddings, None, None, None, None, None


def _linear_coefficients(g_mean, g_std, mean, std, divisor, variance_divisor):
    """(a, b) with dL/dv = a + b·v on the set (not differentiated again, so no guard inside the where)."""
    b = torch.where(std > 0, g_std / (variance_divisor * std), 0.0)
    return g_mean / divisor - b * mean, b
