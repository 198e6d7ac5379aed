"""Losses by name: the one table from short names to losses, and how a loss is saved in a model's config
and rebuilt from it (resume, model card).

A description is ``{"name": class name, "config": get_config_dict(), "citation": BibTeX or ""}``. Every
``EmbeddingLoss`` subclass registers itself when its class is defined, so a user's own loss is rebuilt
by name too, once the module that defines it has been imported.
"""

from __future__ import annotations

import re

from torch import nn

from hf_add.losses.add import ADDLoss
from hf_add.losses.base import EmbeddingLoss
from hf_add.losses.classification import CrossEntropy, SoftTargetBCEWithLogits
from hf_add.losses.focal import FocalLoss
from hf_add.losses.opl import OrthogonalProjectionLoss
from hf_add.losses.validation import check_label_smoothing

# Short names (ADDTrainer's classification_loss, hf-add train's --loss and --classification_loss, Table 2's
# rows) -> the loss they name.
LOSS_NAMES: dict[str, type[nn.Module]] = {
    "ce": CrossEntropy,
    "bce": SoftTargetBCEWithLogits,
    "focal": FocalLoss,
    "opl": OrthogonalProjectionLoss,
    "add": ADDLoss,
}
CLASSIFICATION_LOSS_NAMES = ("ce", "bce")
# The paper's rows: CE alone, Focal instead of CE, CE + OPL, CE + ADD.
TABLE2_LOSS_NAMES = ("ce", "focal", "opl", "add")
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


def build_classification_loss(spec: str | nn.Module, label_smoothing: float = 0.0) -> nn.Module:
    """``"ce"``, ``"bce"`` or a loss module (e.g. ``FocalLoss(gamma=2.0)``) as a module, with
    ``label_smoothing`` (Trainer's ``label_smoothing_factor``) applied.

    A module built with its own non-zero ``label_smoothing`` keeps it when ``label_smoothing`` is 0; two
    different non-zero values, or smoothing asked of a module that has no ``label_smoothing``, are errors
    rather than a silently unsmoothed loss.
    """
    label_smoothing = check_label_smoothing(label_smoothing)
    if isinstance(spec, str):
        if spec not in CLASSIFICATION_LOSS_NAMES:
            raise ValueError(
                f"classification_loss must be one of {list(CLASSIFICATION_LOSS_NAMES)} or a loss module such as "
                f"FocalLoss(gamma=2.0), got {spec!r}"
            )
        return LOSS_NAMES[spec](label_smoothing=label_smoothing)
    if not isinstance(spec, nn.Module):
        raise ValueError(f"classification_loss must be a name or an nn.Module, got {type(spec).__name__}")
    if not label_smoothing:
        return spec
    own = getattr(spec, "label_smoothing", None)
    if own is None:
        raise ValueError(
            f"label_smoothing_factor={label_smoothing:g} cannot be applied to {type(spec).__name__}, which has no "
            "label_smoothing attribute; set label_smoothing_factor=0 and smooth inside your loss"
        )
    if own and own != label_smoothing:
        raise ValueError(
            f"{type(spec).__name__}(label_smoothing={own:g}) and label_smoothing_factor={label_smoothing:g} "
            "disagree; set one of them"
        )
    spec.label_smoothing = label_smoothing
    return spec
