"""Features of every clip computed once, before augmentation, into the dataset's Arrow cache.

Where a clip's features do not depend on its batch (AST: a fixed number of frames), ``cache_features`` adds
an ``input_values`` column with ``datasets.map``. The map is fingerprinted by datasets with its arguments,
which hold the whole feature configuration (``BatchedFbank.config``: mel bins, sampling rate, mean / std,
frames, ...) and ``FEATURES_VERSION``: an extractor with other settings computes (and caches) new features,
the same settings read the cache. Each row also records a digest of that configuration, so that features
cached on a whole split before it is cut into folds are reused by every fold (one cache, not one per fold)
and never by another configuration. SpecAugment and mixup are not cached: they stay per batch, in the
collator.

Cost: 4 bytes x frames x mel bins per clip (AST 128 mel bins: 51 kB per clip at 100 frames, 512 kB at 1024),
on disk next to the dataset's other cache files, memory-mapped rather than held in RAM.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
from datasets import Dataset, Features, List, Value

from hf_add.data.audio import WAVEFORM_COLUMN, one_thread_if_forked
from hf_add.data.fbank import BatchedFbank

FEATURES_COLUMN = "input_values"
# Which feature configuration made a row's features: the cache is reused only by the same configuration.
FEATURES_KEY_COLUMN = "input_values_key"
# Bump when BatchedFbank's output changes for the same configuration, so that old caches are not read.
FEATURES_VERSION = 1


def features_key(fbank: BatchedFbank) -> str:
    """A short digest of the feature configuration and FEATURES_VERSION."""
    text = json.dumps({"config": fbank.config, "version": FEATURES_VERSION}, sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def has_cached_features(dataset: Dataset, fbank: BatchedFbank) -> bool:
    """True when every row's cached features were made with ``fbank``'s configuration."""
    if FEATURES_COLUMN not in dataset.column_names or FEATURES_KEY_COLUMN not in dataset.column_names:
        return False
    return set(dataset.unique(FEATURES_KEY_COLUMN)) == {features_key(fbank)}


def _features_batch(waveforms: list, config: dict, version: int, key: str) -> dict:
    one_thread_if_forked()
    features = BatchedFbank(**config)([np.asarray(w, dtype=np.float32) for w in waveforms])
    return {
        FEATURES_COLUMN: features["input_values"].flatten(1).numpy(),
        FEATURES_KEY_COLUMN: [key] * len(waveforms),
    }


def cache_features(
    dataset: Dataset,
    fbank: BatchedFbank,
    waveform_column: str = WAVEFORM_COLUMN,
    num_proc: int | None = None,
) -> Dataset:
    """``dataset`` with an ``input_values`` column: ``fbank``'s features of each clip's waveform, flattened
    (frames x mel bins), computed in ``num_proc`` processes if given (the same bits: see ``MIN_GEMM_ROWS``)."""
    if not fbank.per_clip:
        raise ValueError(
            f"{fbank.kind} features depend on the batch (padding to its longest clip): they cannot be cached"
        )
    if waveform_column not in dataset.column_names:
        raise ValueError(
            f"no {waveform_column!r} column to compute features from (columns: {dataset.column_names}); "
            "decode the clips first with hf_add.data.decode_and_check"
        )
    # Flat, fixed length: Arrow takes a batch of random rows of it 8x faster than of an Array2D.
    size = fbank.max_length * fbank.config["num_mel_bins"]
    features = Features(
        {
            **dataset.features,
            FEATURES_COLUMN: List(Value("float32"), length=size),
            FEATURES_KEY_COLUMN: Value("string"),
        }
    )
    return dataset.map(
        _features_batch,
        input_columns=waveform_column,
        batched=True,
        batch_size=64,
        writer_batch_size=64,
        fn_kwargs={"config": fbank.config, "version": FEATURES_VERSION, "key": features_key(fbank)},
        features=features,
        num_proc=num_proc,
        desc="computing features (once)",
    )
