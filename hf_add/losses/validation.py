"""Input checks shared by the losses: clear ValueErrors instead of NaNs or silent broadcasting.

Shape checks are free and always run. Value checks (NaN, label ranges) read tensor values, which is a
device-to-host sync, so they are gathered into one reduction, can be switched off, and are skipped while
``torch.compile`` traces (they would break the graph).
"""

from __future__ import annotations

import torch


def check_embeddings_and_labels(
    embeddings: torch.Tensor, labels: torch.Tensor, *, num_classes: int | None, validate: bool
) -> bool:
    """Validate a batch; return True for soft labels (B, C), False for class ids (B,)."""
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
    soft = labels.dim() == 2
    if not soft and labels.is_floating_point():
        raise ValueError(
            f"class-id labels of shape (batch_size,) must have an integer dtype, got {labels.dtype}; "
            "pass probabilities as a (batch_size, num_classes) tensor for the soft-label form"
        )
    if soft and num_classes is not None and labels.shape[1] != num_classes:
        raise ValueError(f"soft labels have {labels.shape[1]} columns but num_classes is {num_classes}")
    if validate and not torch.compiler.is_compiling():
        _check_values(embeddings, labels, soft, num_classes)
    return soft


def _check_values(embeddings, labels, soft, num_classes) -> None:
    checks = {"embeddings contain NaN or inf": ~torch.isfinite(embeddings).all()}
    if soft:
        checks["soft labels have a negative entry; they must be class probabilities"] = (labels < 0).any()
        checks["soft labels have a row that sums to 0; every sample needs some class mass"] = (
            labels.sum(dim=1) <= 0
        ).any()
        checks["soft labels contain NaN or inf"] = ~torch.isfinite(labels).all()
    else:
        checks["class ids must be >= 0"] = (labels < 0).any()
        if num_classes is not None:
            checks[f"class ids must be < num_classes = {num_classes}"] = (labels >= num_classes).any()
    failed = torch.stack(list(checks.values())).tolist()  # the one host sync
    problems = [message for message, bad in zip(checks, failed, strict=True) if bad]
    if problems:
        raise ValueError("invalid loss input: " + "; ".join(problems))
