"""Reload Trainer checkpoints through ``from_pretrained``: a workaround for transformers 5.

transformers 5's ``save_pretrained`` writes some models (AST among them) with their legacy parameter
names, and ``Trainer`` loads checkpoints (``resume_from_checkpoint``, ``load_best_model_at_end``) with a
plain non-strict ``load_state_dict``: the weights are then silently not restored. Going through
``from_pretrained`` applies the key conversion. Delete this module when transformers loads its own
checkpoints back.
"""

from __future__ import annotations

import os

from torch import nn
from transformers import PreTrainedModel, Trainer


class FromPretrainedCheckpointsMixin(Trainer):
    """A Trainer whose checkpoint loads go through ``from_pretrained`` where that applies."""

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: nn.Module | None = None) -> None:
        if not self._load_pretrained_weights(
            model if model is not None else self.model, resume_from_checkpoint
        ):
            super()._load_from_checkpoint(resume_from_checkpoint, model)

    def _load_best_model(self) -> None:
        if not self._load_pretrained_weights(self.model, self.state.best_model_checkpoint):
            super()._load_best_model()

    def _load_pretrained_weights(self, model: nn.Module, checkpoint: str) -> bool:
        """Load ``checkpoint`` into ``model`` strictly; False where it does not apply (then Trainer's way)."""
        model = self.accelerator.unwrap_model(model)
        if (
            not isinstance(model, PreTrainedModel)
            or self.is_deepspeed_enabled
            or self.is_fsdp_enabled
            or not os.path.isfile(os.path.join(checkpoint, "config.json"))
        ):
            return False
        reloaded = type(model).from_pretrained(checkpoint, config=model.config, dtype=model.dtype)
        model.load_state_dict(reloaded.state_dict(), strict=True)
        return True
