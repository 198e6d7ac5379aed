"""Batches from decoded audio rows: feature extraction, and in training SpecAugment masks and mixup.

Rows carry the features cached once per dataset (``input_values``, see ``feature_cache``), or the waveform
decoded once (a float32 column ``waveform``, 16 kHz mono), or a decoded audio column; features not cached are
computed for the whole batch at once (``BatchedFbank``) wherever that reproduces the model's extractor, else
by the extractor itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torchaudio.transforms import FrequencyMasking, TimeMasking
from transformers import TrainerCallback

from hf_add.data.audio import SAMPLING_RATE, WAVEFORM_COLUMN
from hf_add.data.fbank import BatchedFbank
from hf_add.data.feature_cache import (
    FEATURES_COLUMN,
    FEATURES_KEY_COLUMN,
    cache_features,
    has_cached_features,
)


def _fit(wave: np.ndarray, length: int) -> np.ndarray:
    """Zero-pad or cut a waveform to ``length`` samples."""
    return np.pad(wave, (0, max(0, length - wave.size)))[:length]


@dataclass
class AudioClassificationCollator:
    """Turns rows ``{"waveform" or audio_column: 16 kHz mono audio, "labels": class id}`` into model inputs.

    A row's cached features (``input_values``, made by ``prepare``) are used when it has them, except for
    mixup, which mixes waveforms; else its ``waveform_column`` (no decoding); else its decoded
    ``audio_column``. ``labels`` may be absent (inference): the batch then has none.

    In training mode (``train()``), each sample is mixed with a random sample of the batch with probability
    ``mixup`` (waveforms, λ ~ Beta(``mixup_alpha``, ``mixup_alpha``); the authors' configs use 10), which makes
    ``labels`` class probabilities of shape (B, C), rows summing to 1 (multi-hot rows of multi-label data are
    mixed the same way: the mixed row is λ·y_i + (1 - λ)·y_j); then frequency and time masks of at
    most ``freq_mask`` / ``time_mask`` bins are drawn per sample on the extracted features (B, T, F).
    In evaluation mode (the default) the batch is only feature-extracted and ``labels`` are class ids, or
    float multi-hot rows when the rows' ``labels`` are lists (multi-label data).

    ``Trainer`` uses one ``data_collator`` for training and evaluation: add ``AugmentationSwitch(collator)``
    to its callbacks to switch the mode, or call ``train()`` / ``eval()`` yourself. Give the Trainer
    ``collator.prepare(dataset)``: the features cache added where it applies, and only the columns read here.

    ``feature_device`` (e.g. "cuda") computes features and masks there: the batch comes out on that device,
    so the DataLoader must not pin memory (``dataloader_pin_memory=False``) nor use worker processes.
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
    waveform_column: str = WAVEFORM_COLUMN
    feature_device: str | None = None
    cache_features: bool = True

    def __post_init__(self):
        self.fbank = BatchedFbank.for_extractor(self.feature_extractor, self.extractor_kwargs)

    def train(self, mode: bool = True) -> AudioClassificationCollator:
        self.training = mode
        return self

    def eval(self) -> AudioClassificationCollator:
        return self.train(False)

    @property
    def caches_features(self) -> bool:
        """Whether a clip's features are computed once into the dataset (fixed-length AST inputs)."""
        return self.cache_features and self.fbank is not None and self.fbank.per_clip

    def cache_split(self, dataset, num_proc: int | None = None):
        """``dataset`` (all columns kept) with its features cached where they can be (in ``num_proc``
        processes if given). Applied to a whole split before it is cut into folds, every fold's ``prepare``
        reuses that one cache; features made with another configuration are replaced."""
        if not self.caches_features or self.waveform_column not in dataset.column_names:
            return dataset
        if has_cached_features(dataset, self.fbank):
            return dataset
        stale = [c for c in (FEATURES_COLUMN, FEATURES_KEY_COLUMN) if c in dataset.column_names]
        return cache_features(dataset.remove_columns(stale), self.fbank, self.waveform_column, num_proc)

    def prepare(self, dataset, with_labels: bool = True):
        """``dataset`` as the Trainer should index it: with the features cache (``cache_features``, once per
        dataset and feature configuration) where a clip's features do not depend on its batch, the waveform
        where mixup or the features need it, else the audio column; and the labels. Arrays come as numpy,
        not lists of floats; other columns, a not-needed audio column above all (creating its decoder
        costs more per row than the model step), are left out."""
        if dataset is None:
            return None
        if with_labels and "labels" not in dataset.column_names:
            raise ValueError(
                f"the dataset has no 'labels' column (columns: {dataset.column_names}): the collator reads class "
                "ids from it. Rename yours, e.g. dataset.rename_column('label', 'labels'), or pass "
                "with_labels=False for inference."
            )
        if self.waveform_column not in dataset.column_names:
            prepared = (
                FEATURES_COLUMN in dataset.column_names and self.audio_column not in dataset.column_names
            )
            columns = [FEATURES_COLUMN if prepared else self.audio_column]
        elif self.caches_features:
            dataset = self.cache_split(dataset)
            columns = [FEATURES_COLUMN] + ([self.waveform_column] if self.mixup > 0 else [])
        else:
            columns = [self.waveform_column]
        columns += ["labels"] if with_labels else []
        dataset = dataset.select_columns(columns)
        return dataset if self.audio_column in columns else dataset.with_format("numpy")

    def _waveform(self, row: dict) -> np.ndarray:
        if row.get(self.waveform_column) is not None:
            return np.asarray(row[self.waveform_column], dtype=np.float32)
        audio = row[self.audio_column]
        if audio["sampling_rate"] != SAMPLING_RATE:
            raise ValueError(
                f"Audio at {audio['sampling_rate']} Hz: cast the column first, "
                f"dataset.cast_column({self.audio_column!r}, Audio(sampling_rate={SAMPLING_RATE}, num_channels=1))"
            )
        return np.asarray(audio["array"], dtype=np.float32)

    def _labels(self, values: list) -> torch.Tensor:
        """Class ids (B,), or multi-hot float rows (B, C) for multi-label rows: lists of integer class ids (as
        ``attach_labels`` makes them), or float multi-hot rows, taken as they are."""
        if not isinstance(values[0], (list, tuple, np.ndarray)):
            return torch.tensor(np.array(values), dtype=torch.long)
        if np.asarray(values[0]).dtype.kind == "f":
            return torch.tensor(np.array(values), dtype=torch.float32)
        multi_hot = torch.zeros(len(values), self.num_labels)
        for row, ids in enumerate(values):
            multi_hot[row, list(ids)] = 1.0
        return multi_hot

    def _mixup(self, waves: list[np.ndarray], labels: torch.Tensor) -> tuple[list[np.ndarray], torch.Tensor]:
        targets = labels if labels.dim() == 2 else F.one_hot(labels, self.num_labels).float()
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

    def features(self, waves: list[np.ndarray]) -> dict[str, torch.Tensor]:
        """The extractor's output for these waveforms (batched where ``BatchedFbank`` reproduces it)."""
        if self.fbank is not None:
            return self.fbank(waves, device=self.feature_device)
        batch = self.feature_extractor(
            waves, sampling_rate=SAMPLING_RATE, return_tensors="pt", **self.extractor_kwargs
        )
        return {k: v.to(self.feature_device) if self.feature_device else v for k, v in batch.items()}

    def __call__(self, rows: list[dict]) -> dict[str, torch.Tensor]:
        labels = None
        if "labels" in rows[0]:
            labels = self._labels([row["labels"] for row in rows])
        mixing = self.training and self.mixup > 0
        if FEATURES_COLUMN in rows[0] and self.fbank is not None and not mixing:
            features = np.stack([row[FEATURES_COLUMN] for row in rows])  # flattened (frames x mel bins)
            features = torch.from_numpy(features.reshape(len(rows), -1, self.fbank.config["num_mel_bins"]))
            batch = {"input_values": features.to(self.feature_device) if self.feature_device else features}
        else:
            waves = [self._waveform(row) for row in rows]
            if mixing:
                if labels is None:
                    raise ValueError("mixup mixes labels too: training rows need a 'labels' column")
                waves, labels = self._mixup(waves, labels)
            batch = self.features(waves)
        if self.training:
            batch["input_values"] = self._mask(batch["input_values"])
        if labels is not None:
            batch["labels"] = labels.to(batch["input_values"].device)
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
