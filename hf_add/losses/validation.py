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


def check_label_smoothing(value) -> float:
    """Label smoothing ε of a classification loss: a number in [0, 1)."""
    value = check_weight("label_smoothing", value)
    if value >= 1:
        raise ValueError(f"label_smoothing must be in [0, 1), got {value!r}")
    return value


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
    _enforce(_value_checks(row_maxima, labels, soft, num_classes), "invalid loss input", read_on_host)


def check_label_rows(labels: torch.Tensor, logits: torch.Tensor, multi_label: bool) -> None:
    """Labels that fit the model's problem type: multi-hot rows in [0, 1] for multi-label models
    (``config.problem_type == "multi_label_classification"``); otherwise class ids, or probability rows
    that sum to 1 (mixup). A 2-D label that is neither is named, with the ``problem_type`` that fixes it."""
    if multi_label and (labels.dim() != 2 or not labels.is_floating_point()):
        raise ValueError(
            "the model's config.problem_type is 'multi_label_classification', so labels must be multi-hot float "
            f"rows of shape (batch_size, num_labels), got {labels.dtype} labels of shape {tuple(labels.shape)}"
        )
    if labels.dim() != 2:
        return
    if labels.shape != logits.shape:
        raise ValueError(f"labels of shape {tuple(labels.shape)} do not match logits {tuple(logits.shape)}")
    if multi_label:
        checks = [
            (labels.amin(), lambda v: v >= 0, "multi-hot labels have an entry below 0"),
            (labels.amax(), lambda v: v <= 1, "multi-hot labels have an entry above 1"),
        ]
    else:
        error = (labels.sum(dim=1) - 1.0).abs().amax()
        checks = [
            (
                error,
                lambda v: v <= 1e-3,
                (
                    "2-D labels whose rows do not sum to 1 are not class probabilities; for multi-label tagging (several "
                    "classes per clip) set model.config.problem_type = 'multi_label_classification'"
                ),
            )
        ]
    _enforce(checks, "invalid labels")


def _enforce(
    checks: list[tuple[torch.Tensor, Callable, str]], what: str, read_on_host: bool | None = None
) -> None:
    """Raise for the checks that fail: read on the host (default: for CPU tensors) with each problem named,
    else one device-side assertion, so that the host never waits for the device."""
    if torch.compiler.is_compiling() or not checks:
        return
    if read_on_host if read_on_host is not None else checks[0][0].device.type == "cpu":
        problems = [message for value, holds, message in checks if not holds(value.item())]
        if problems:
            raise ValueError(f"{what}: " + "; ".join(problems))
    else:
        torch._assert_async(
            torch.stack([torch.as_tensor(holds(value)) for value, holds, _ in checks]).all(),
            f"{what}, one of: "
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
        ]
    else:
        low, high = torch.aminmax(labels)
        checks.append((low, lambda v: v >= 0, "class ids must be >= 0"))
        if num_classes is not None:
            checks.append(
                (high, lambda v: v < num_classes, f"class ids must be < num_classes = {num_classes}")
            )
    return checks
