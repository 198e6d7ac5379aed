"""Capture the input of a model's classification head: the embedding that ADD sees.

A forward pre-hook on the head (``model.classifier`` by default) sees exactly the pooled vector the head
classifies, for any ``*ForAudioClassification`` model, without ``output_hidden_states=True`` (which keeps
every layer alive) and without model surgery. The hook sits on the unwrapped module, so DDP,
``torch.compile`` and gradient checkpointing wrap around it unchanged.
"""

from __future__ import annotations

import torch
from torch import nn

_HEAD_HINTS = ("classifier", "head", "projector", "pooler", "score")


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
            raise RuntimeError(
                f"the model's forward did not call {self.module_name!r}; check embedding_module"
            )
        embedding, self._embedding = self._embedding, None
        return embedding

    def remove(self) -> None:
        self._handle.remove()
