"""ẑ = z / ‖z‖ for any scale of z: the normalisation every embedding loss here starts from.

Each row is first divided by its largest magnitude, so ‖z‖ neither overflows (z ~ 1e20 in float32) nor
underflows (z ~ 1e-30); ẑ depends on the direction of z only, as ADD does. The row maxima are detached:
the normalisation is invariant to them, so the gradient is exact. They also tell the value checks whether
the embeddings are finite, at no extra pass. ε floors the norm of the rescaled row, which is at least 1
unless the row is all zero: such a row gives ẑ = 0 with a finite gradient.
"""

from __future__ import annotations

import contextlib

import torch

from hf_add.losses.validation import check_shapes, check_values


def full_precision(device: torch.device | str) -> contextlib.AbstractContextManager:
    """The one rule for every pair statistic: autocast off, so they never run in half precision (bf16's
    ε ≈ 0.008 quantises d = 1 - cos badly; F.normalize's ε underflows in fp16)."""
    return torch.autocast(device_type=torch.device(device).type, enabled=False)


def row_maxima(z: torch.Tensor) -> torch.Tensor:
    """max_j |z_ij| per row, (B, 1), outside the autograd graph."""
    return z.detach().abs().amax(dim=1, keepdim=True)


def scale_safe_unit(
    z: torch.Tensor, maxima: torch.Tensor, eps: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(ẑ, the row scales, the norms of the rescaled rows): ẑ = (z / scales) / norms."""
    scales = torch.where(maxima > 0, maxima, 1.0)
    scaled = z / scales
    norms = torch.linalg.vector_norm(scaled, dim=1, keepdim=True).clamp_min(eps)
    return scaled / norms, scales, norms


def checked_float_embeddings(
    embeddings: torch.Tensor, labels: torch.Tensor, num_classes: int | None, validate: bool
) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """(z in float32 or float64, its row maxima, soft): the batch checked, ready to normalise."""
    soft = check_shapes(embeddings, labels, num_classes)
    z = embeddings.to(torch.promote_types(embeddings.dtype, torch.float32))
    maxima = row_maxima(z)
    if validate:
        check_values(maxima, labels, soft, num_classes)
    return z, maxima, soft


def normalized_inputs(
    embeddings: torch.Tensor, labels: torch.Tensor, num_classes: int | None, eps: float, validate: bool
) -> tuple[torch.Tensor, bool]:
    """(ẑ, soft): the checked batch, normalised (differentiable, through autograd)."""
    z, maxima, soft = checked_float_embeddings(embeddings, labels, num_classes, validate)
    return scale_safe_unit(z, maxima, eps)[0], soft
