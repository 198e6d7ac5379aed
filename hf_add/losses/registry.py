"""Losses by name: how a loss is saved in a model's config and rebuilt from it (resume, model card).

A description is ``{"name": class name, "config": get_config_dict(), "citation": BibTeX or ""}``. Every
``EmbeddingLoss`` subclass registers itself when its class is defined, so a user's own loss is rebuilt
by name too, once the module that defines it has been imported.
"""

from __future__ import annotations

import re

from torch import nn

from hf_add.losses.base import EmbeddingLoss
from hf_add.losses.classification import CrossEntropy, SoftTargetBCEWithLogits
from hf_add.losses.focal import FocalLoss

CLASSIFICATION_LOSS_CLASSES = (CrossEntropy, SoftTargetBCEWithLogits, FocalLoss)


def describe_loss(loss: nn.Module | None) -> dict | None:
    if loss is None:
        return None
    return {
        "name": type(loss).__name__,
        "config": loss.get_config_dict() if hasattr(loss, "get_config_dict") else {},
        "citation": getattr(loss, "citation", ""),
    }


def build_loss(description: dict | None) -> nn.Module | None:
    """The loss a description was made from; a ValueError names an unknown (not imported) class."""
    if description is None:
        return None
    classes = _loss_classes()
    name = description["name"]
    if name not in classes:
        raise ValueError(
            f"the saved loss {name!r} is not a known loss class; import the module that defines it "
            "(an EmbeddingLoss subclass registers itself) before resuming"
        )
    return classes[name](**description["config"])


def _loss_classes() -> dict[str, type[nn.Module]]:
    return {**EmbeddingLoss.registry, **{cls.__name__: cls for cls in CLASSIFICATION_LOSS_CLASSES}}


def loss_citation(description: dict) -> str:
    """The description's BibTeX; for configs saved before citations were stored, the class's own."""
    if "citation" in description:
        return description["citation"]
    return getattr(_loss_classes().get(description["name"]), "citation", "")


def loss_tag(description: dict) -> str:
    """The class name in kebab case, the model card's tag for the loss: ADDLoss -> add-loss."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "-", description["name"]).lower()
