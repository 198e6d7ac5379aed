"""EmbeddingLoss: the base of every loss that ADDTrainer adds to the classification loss.

A subclass fills in two methods: ``statistics`` (named tensors computed from a batch of embeddings and
labels: the quantities worth logging) and ``loss_from_statistics`` (their weighted sum). The base class
does the shared work once: the input checks, scale-safe float32 normalisation, a ``forward`` that runs the
statistics in float32 under autocast, the configuration saved with the model, and a class registry so a
saved configuration can be rebuilt by name. ``ADDTrainer`` logs every statistic, stores
``get_config_dict()`` in the model config and puts ``citation`` in the model card, for any subclass.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from hf_add.losses.normalization import full_precision, normalized_inputs
from hf_add.losses.validation import check_weight


class EmbeddingLoss(nn.Module):
    """Base class of the pair losses on the pooled embedding (ADD, OPL, or your own).

    Subclasses implement:

    - ``statistics(embeddings, labels, num_classes=None) -> dict[str, Tensor]``: call
      ``self.prepare(...)`` for checked, unit-norm float32 embeddings, and return named scalar tensors.
      Keys starting with ``num_`` are counts (``num_positive_pairs`` is what ADDTrainer reports as the
      positive pairs per batch); the others are logged as they are.
    - ``loss_from_statistics(stats) -> Tensor``: the loss, a weighted sum of the statistics.
    - ``get_config_dict() -> dict``: the constructor arguments (JSON-serialisable), so the loss can be
      rebuilt from a saved model's config.

    and set the class attribute ``citation`` (BibTeX), which the model card lists.

    Example::

        class MeanCosineLoss(EmbeddingLoss):
            citation = ""

            def statistics(self, embeddings, labels, num_classes=None):
                unit, _ = self.prepare(embeddings, labels, num_classes)
                return {"mean_cosine": (unit @ unit.T).mean()}

            def loss_from_statistics(self, stats):
                return stats["mean_cosine"]
    """

    citation: ClassVar[str] = ""
    registry: ClassVar[dict[str, type[EmbeddingLoss]]] = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        EmbeddingLoss.registry[cls.__name__] = cls

    def __init__(self, eps: float = 1e-6, validate: bool = True):
        super().__init__()
        if not check_weight("eps", eps) > 0:
            raise ValueError(f"eps must be a finite number > 0, got {eps!r}")
        self.eps = float(eps)
        self.validate = validate

    check_weight = staticmethod(check_weight)

    def prepare(
        self, embeddings: torch.Tensor, labels: torch.Tensor, num_classes: int | None = None
    ) -> tuple[torch.Tensor, bool]:
        """Checked inputs: (unit-norm embeddings in float32 or float64, True for soft labels)."""
        return normalized_inputs(embeddings, labels, num_classes, self.eps, self.validate)

    def statistics(
        self, embeddings: torch.Tensor, labels: torch.Tensor, num_classes: int | None = None
    ) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def loss_from_statistics(self, stats: dict[str, torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError

    def get_config_dict(self) -> dict:
        return {}

    def forward(
        self, embeddings: torch.Tensor, labels: torch.Tensor, num_classes: int | None = None
    ) -> torch.Tensor:
        with full_precision(embeddings.device):
            return self.loss_from_statistics(self.statistics(embeddings, labels, num_classes))

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.get_config_dict().items())
