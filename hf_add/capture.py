"""Capture the input of a model's classification head: the embedding that ADD sees.

A forward pre-hook on the head (``model.classifier`` by default) sees exactly the pooled vector the head
classifies, for any ``*ForAudioClassification`` model, without ``output_hidden_states=True`` (which keeps
every layer alive) and without model surgery. The hook sits on the unwrapped module, so DDP,
``torch.compile`` and gradient checkpointing wrap around it unchanged.

A model carries at most one capture (``capture_embeddings``): a second ``ADDTrainer`` built on the same
model shares it instead of adding a second hook, and a capture on another module replaces it.
"""

from __future__ import annotations

import weakref

import torch
from torch import nn

_HEAD_HINTS = ("classifier", "head", "projector", "pooler", "score")

_CAPTURES: weakref.WeakKeyDictionary[nn.Module, EmbeddingCapture] = weakref.WeakKeyDictionary()


def capture_embeddings(model: nn.Module, module_name: str = "classifier") -> EmbeddingCapture:
    """The one capture of ``model`` on ``module_name``: the existing one if it is there, else a new one
    that replaces (and unhooks) a capture on another module."""
    existing = _CAPTURES.get(model)
    if existing is not None and existing.module_name == module_name and not existing.removed:
        return existing
    capture = EmbeddingCapture(model, module_name)
    if existing is not None:
        existing.remove(replaced_by=module_name)
    _CAPTURES[model] = capture
    return capture


class EmbeddingCapture:
    """Keeps the last input of ``model.get_submodule(module_name)``; ``pop()`` hands it over once."""

    def __init__(self, model: nn.Module, module_name: str = "classifier"):
        try:
            module = model.get_submodule(module_name)
        except AttributeError:
            candidates = [
                name for name, _ in model.named_modules() if name.split(".")[-1].startswith(_HEAD_HINTS)
            ]
            raise ValueError(
                f"{type(model).__name__} has no module named {module_name!r} to take embeddings from. "
                f"Pass embedding_module= one of its head-like modules {candidates or '(none found)'}, or one of "
                f"its top-level modules {[name for name, _ in model.named_children()]}."
            ) from None
        self.module_name = module_name
        self.removed = False
        self._replaced_by: str | None = None
        self._embedding: torch.Tensor | None = None
        self._handle = module.register_forward_pre_hook(self._hook)

    def _hook(self, module: nn.Module, args: tuple) -> None:
        if not args or not torch.is_tensor(args[0]):
            raise ValueError(
                f"the module {self.module_name!r} was not called with a tensor as its first argument, so its "
                "input cannot serve as the embedding; choose another embedding_module"
            )
        self._embedding = args[0]

    def pop(self) -> torch.Tensor:
        """The captured embedding of the last forward pass (released so it does not outlive the step)."""
        if self._embedding is None:
            if self._replaced_by is not None:
                raise RuntimeError(
                    f"this trainer's capture on {self.module_name!r} was replaced by another ADDTrainer on the "
                    f"same model that captures {self._replaced_by!r}; build one trainer per model, or give "
                    "both the same embedding_module"
                )
            raise RuntimeError(
                f"the model's forward did not call {self.module_name!r}; check embedding_module"
            )
        embedding, self._embedding = self._embedding, None
        return embedding

    def remove(self, replaced_by: str | None = None) -> None:
        self._handle.remove()
        self.removed = True
        self._replaced_by = replaced_by
