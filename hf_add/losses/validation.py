"""Input checks shared by the losses: clear ValueErrors instead of NaNs or silent broadcasting.

Shape and dtype checks read no tensor values and always run (``check_shapes``). Value checks (NaN, label
ranges; ``check_values``) must not make the host wait for the device every step: on an accelerator they are
one device-side assertion (``torch._assert_async``: the step fails when the device reaches it, with a
message naming what to check); on the CPU, where reading a value costs no sync, they run directly and name
the exact problem. Non-finite embeddings are found from their per-row maxima, which the normalisation
computes anyway. The value checks are skipped while ``torch.compile`` traces; ``validate=False`` skips them.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch


def check_weight(name: str, value) -> float:
    """A loss weight: a finite number ≥ 0 (NaN or inf would turn every parameter into NaN)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < 0
    ):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


def check_shapes(embeddings: torch.Tensor, labels: torch.Tensor, num_classes: int | None) -> bool:
    """Validate a batch's shapes and dtypes; return True for soft labels (B, C), False for class ids (B,)."""
    if embeddings.dim() != 2:
        raise ValueError(
            f"embeddings must have shape (batch_size, embedding_dim), got shape {tuple(embeddings.shape)}; "
            "pool sequence outputs (e.g. mean over time) before the loss"
        )
    if not embeddings.is_floating_point():
        raise ValueError(f"embeddings must be a floating-point tensor, got dtype {embeddings.dtype}")
    if labels.dim() not in (1, 2):
        raise ValueError(
            "labels must be class ids of shape (batch_size,) or class probabilities of shape "
            f"(batch_size, num_classes), got shape {tuple(labels.shape)}"
        )
    if labels.shape[0] != embeddings.shape[0]:
        raise ValueError(
            f"labels and embeddings must have the same batch size, got {labels.shape[0]} labels "
            f"for {embeddings.shape[0]} embeddings"
        )
    if labels.shape[0] == 0:
        raise ValueError("the batch is empty; the loss needs at least one sample")
    soft = labels.dim() == 2
    if soft and not labels.is_floating_point():
        raise ValueError(
            f"labels of shape {tuple(labels.shape)} with integer dtype {labels.dtype}: class ids must have "
            "shape (batch_size,) (use labels.squeeze(1) or labels.view(-1)); soft labels (batch_size, "
            "num_classes) must be float class probabilities"
        )
    if not soft and labels.is_floating_point():
        raise ValueError(
            f"class-id labels of shape (batch_size,) must have an integer dtype, got {labels.dtype}; "
            "pass probabilities as a (batch_size, num_classes) tensor for the soft-label form"
        )
    if soft and num_classes is not None and labels.shape[1] != num_classes:
        raise ValueError(f"soft labels have {labels.shape[1]} columns but num_classes is {num_classes}")
    return soft


def check_values(
    row_maxima: torch.Tensor,
    labels: torch.Tensor,
    soft: bool,
    num_classes: int | None,
    read_on_host: bool | None = None,
) -> None:
    """NaN/inf embeddings (from their per-row largest magnitudes) and label values; ``read_on_host``
    (default: on the CPU) reads them and names the problem, else one device-side assertion checks them."""
    if torch.compiler.is_compiling():
        return
    checks = _value_checks(row_maxima, labels, soft, num_classes)
    if read_on_host if read_on_host is not None else row_maxima.device.type == "cpu":
        problems = [message for value, holds, message in checks if not holds(value.item())]
        if problems:
            raise ValueError("invalid loss input: " + "; ".join(problems))
    else:
        torch._assert_async(
            torch.stack([holds(value) for value, holds, _ in checks]).all(),
            "invalid loss input, one of: "
            + "; ".join(message for *_, message in checks)
            + ". Run the batch on the CPU for the exact problem.",
        )


def _finite(value):
    return (value == value) & (abs(value) != math.inf)  # for a float and for a tensor alike


def _value_checks(row_maxima, labels, soft, num_classes) -> list[tuple[torch.Tensor, Callable, str]]:
    """(0-d tensor, condition it must meet, message for when it does not) for every value check; the
    conditions work on Python numbers and on tensors alike. NaN propagates through max and sum."""
    checks = [(row_maxima.amax(), _finite, "embeddings contain NaN or inf")]
    if soft:
        row_sums = labels.sum(dim=1)
        checks += [
            (row_sums.amax(), _finite, "soft labels contain NaN or inf"),
            (
                labels.min(),
                lambda v: v >= 0,
                "soft labels have a negative entry; they must be class probabilities",
            ),
            (
                row_sums.min(),
                lambda v: v > 0,
                "soft labels have a row that sums to 0; every sample needs some class mass",
            ),
        ]
    else:
        low, high = torch.aminmax(labels)
        checks.append((low, lambda v: v >= 0, "class ids must be >= 0"))
        if num_classes is not None:
            checks.append(
                (high, lambda v: v < num_classes, f"class ids must be < num_classes = {num_classes}")
            )
    return checks
