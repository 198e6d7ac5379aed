"""Batches from decoded audio rows: feature extraction, and in training SpecAugment masks and mixup."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torchaudio.transforms import FrequencyMasking, TimeMasking
from transformers import TrainerCallback

from .presets import SAMPLING_RATE


def _fit(wave: np.ndarray, length: int) -> np.ndarray:
    """Zero-pad or cut a waveform to ``length`` samples."""
    return np.pad(wave, (0, max(0, length - wave.size)))[:length]


@dataclass
class AudioClassificationCollator:
    """Turns rows ``{audio_column: 16 kHz mono audio, "labels": class id}`` into model inputs.

    In training mode (``train()``), each sample is mixed with a random sample of the batch with probability
    ``mixup`` (waveforms, λ ~ Beta(``mixup_alpha``, ``mixup_alpha``); the authors' configs use 10), which makes
    ``labels`` class probabilities of shape (B, C), rows summing to 1; then frequency and time masks of at
    most ``freq_mask`` / ``time_mask`` bins are drawn per sample on the extracted features (B, T, F).
    In evaluation mode (the default) the batch is only feature-extracted and ``labels`` are class ids.

    ``Trainer`` uses one ``data_collator`` for training and evaluation: add ``AugmentationSwitch(collator)``
    to its callbacks to switch the mode, or call ``train()`` / ``eval()`` yourself.
    """

    feature_extractor: Any
    num_labels: int
    audio_column: str = "audio"
    freq_mask: int = 0
    time_mask: int = 0
    mixup: float = 0.0
    mixup_alpha: float = 10.0
    extractor_kwargs: dict = field(default_factory=dict)
    training: bool = False

    def train(self, mode: bool = True) -> AudioClassificationCollator:
        self.training = mode
        return self

    def eval(self) -> AudioClassificationCollator:
        return self.train(False)

    def _waveform(self, row: dict) -> np.ndarray:
        audio = row[self.audio_column]
        if audio["sampling_rate"] != SAMPLING_RATE:
            raise ValueError(
                f"Audio at {audio['sampling_rate']} Hz: cast the column first, "
                f"dataset.cast_column({self.audio_column!r}, Audio(sampling_rate={SAMPLING_RATE}, num_channels=1))"
            )
        return np.asarray(audio["array"], dtype=np.float32)

    def _mixup(self, waves: list[np.ndarray], labels: torch.Tensor) -> tuple[list[np.ndarray], torch.Tensor]:
        targets = F.one_hot(labels, self.num_labels).float()
        mixed = targets.clone()
        partners = torch.randint(len(waves), (len(waves),))
        lams = torch.distributions.Beta(self.mixup_alpha, self.mixup_alpha).sample((len(waves),))
        for i in torch.nonzero(torch.rand(len(waves)) < self.mixup).flatten().tolist():
            j, lam = partners[i].item(), lams[i].item()
            waves[i] = lam * waves[i] + (1 - lam) * _fit(waves[j], waves[i].size)
            mixed[i] = lam * targets[i] + (1 - lam) * targets[j]
        return waves, mixed

    def _mask(self, features: torch.Tensor) -> torch.Tensor:
        # Masked bins become 0: the extractors normalise features, so 0 is about the mean level.
        spectrogram = features.transpose(1, 2).unsqueeze(1)  # (B, 1, F, T), one mask per sample
        if self.freq_mask > 0:
            spectrogram = FrequencyMasking(self.freq_mask, iid_masks=True)(spectrogram)
        if self.time_mask > 0:
            spectrogram = TimeMasking(self.time_mask, iid_masks=True)(spectrogram)
        return spectrogram.squeeze(1).transpose(1, 2)

    def __call__(self, rows: list[dict]) -> dict[str, torch.Tensor]:
        waves = [self._waveform(row) for row in rows]
        labels = torch.tensor([row["labels"] for row in rows], dtype=torch.long)
        if self.training and self.mixup > 0:
            waves, labels = self._mixup(waves, labels)
        batch = dict(
            self.feature_extractor(
                waves, sampling_rate=SAMPLING_RATE, return_tensors="pt", **self.extractor_kwargs
            )
        )
        if self.training:
            batch["input_values"] = self._mask(batch["input_values"])
        batch["labels"] = labels
        return batch


class AugmentationSwitch(TrainerCallback):
    """Puts the collator in training mode for training batches and in evaluation mode for evaluation ones.

    Evaluation during training starts after ``on_step_end`` / ``on_epoch_end`` has set
    ``control.should_evaluate`` (``DefaultFlowCallback`` runs before user callbacks) and ends with
    ``on_evaluate``. Dataloader workers copy the collator when an epoch's iterator is created, which happens
    after these switches, so the mode is right with ``dataloader_num_workers > 0`` too.
    """

    def __init__(self, collator: AudioClassificationCollator):
        self.collator = collator
        self.in_training = False

    def on_train_begin(self, args, state, control, **kwargs):
        self.in_training = True
        self.collator.train()

    def on_step_end(self, args, state, control, **kwargs):
        if control.should_evaluate:
            self.collator.eval()

    on_epoch_end = on_step_end

    def on_evaluate(self, args, state, control, **kwargs):
        self.collator.train(self.in_training)

    def on_train_end(self, args, state, control, **kwargs):
        self.in_training = False
        self.collator.eval()
