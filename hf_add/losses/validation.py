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
    if labels.shape[0] == 0:
        raise ValueError("the batch is empty; the loss needs at least one sample")
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
    # Few small reductions and one host sync: this runs every step.
    finite = torch.isfinite(embeddings).all()
    if soft:
        row_sums = labels.sum(dim=1)
        summary = torch.stack([finite, torch.isfinite(row_sums).all(), labels.min() >= 0, row_sums.min() > 0])
        messages = [
            "embeddings contain NaN or inf",
            "soft labels contain NaN or inf",
            "soft labels have a negative entry; they must be class probabilities",
            "soft labels have a row that sums to 0; every sample needs some class mass",
        ]
        problems = [m for m, ok in zip(messages, summary.tolist(), strict=True) if not ok]
    else:
        low, high = torch.aminmax(labels)
        is_finite, low, high = torch.stack([finite.to(labels.dtype), low, high]).tolist()
        problems = [] if is_finite else ["embeddings contain NaN or inf"]
        if low < 0:
            problems.append("class ids must be >= 0")
        if num_classes is not None and high >= num_classes:
            problems.append(f"class ids must be < num_classes = {num_classes}")
    if problems:
        raise ValueError("invalid loss input: " + "; ".join(problems))
