"""Decode every clip once, check it, and keep its 16 kHz mono waveform: the one audio path of train and evaluate.

``decode_and_check`` runs a ``datasets.map`` over a split that decodes each clip (any container or rate that
torchcodec reads), resamples it to 16 kHz mono and stores the samples in a float32 ``waveform`` column. The
map lands in the dataset's Arrow cache and is fingerprinted by datasets (function, arguments, input data),
so a rerun or the next epoch reads samples instead of decoding files. In the same pass every clip that
cannot feed a model is named: undecodable, empty, non-finite (NaN/inf samples), or shorter than one
analysis window of the Kaldi fbank that AST and BEATs compute. Such clips stop the run before any training,
or with ``skip_corrupt`` are dropped and reported.

Cost: 4 bytes per sample, 64 kB per second of audio (ESC-50: 0.6 GB; Speech Commands v2: 6.8 GB on disk,
memory-mapped, not held in RAM).
"""

from __future__ import annotations

import io
import logging
import os

import numpy as np
import soundfile as sf
import torch
from datasets import Audio, Dataset, Features, List, Value

SAMPLING_RATE = 16000
# One 25 ms frame at 16 kHz: the Kaldi fbank of AST and BEATs needs at least one full window.
MIN_SAMPLES = 400
WAVEFORM_COLUMN = "waveform"

logger = logging.getLogger(__name__)
_IMPORTED_IN = os.getpid()


def one_thread_if_forked() -> None:
    """One torch thread in a process forked from the one that imported this module (datasets' ``num_proc``
    workers), as DataLoader workers do: the parent's OpenMP threads do not exist in the child, and torch's
    first parallel op there waits for them forever; and N workers x N threads would oversubscribe the cores."""
    if os.getpid() != _IMPORTED_IN and torch.get_num_threads() > 1:
        torch.set_num_threads(1)


# What libsndfile reads exactly as torchcodec decodes it (tested bit for bit), about 20 times faster.
DIRECT_FORMATS = ("WAV", "WAVEX", "FLAC")


def read_directly(value: dict) -> np.ndarray | None:
    """A 16 kHz mono WAV or FLAC clip's float32 samples, read with libsndfile: the samples torchcodec gives,
    without opening an FFmpeg decoder per clip (2.3 ms against 0.1 ms for 1 s). None for anything else
    (another rate, several channels, another container, a remote path), which torchcodec decodes."""
    source = io.BytesIO(value["bytes"]) if value.get("bytes") else value.get("path")
    if source is None:
        return None
    try:
        with sf.SoundFile(source) as f:
            if f.samplerate != SAMPLING_RATE or f.channels != 1 or f.format not in DIRECT_FORMATS:
                return None
            return f.read(dtype="float32")
    except Exception:  # not readable by libsndfile (or not a local file): torchcodec decides
        return None


def decode_clip(decoder: Audio, value: dict, min_samples: int = MIN_SAMPLES) -> tuple[np.ndarray, str]:
    """One clip's 16 kHz mono samples and what makes it unusable ("" when usable; then the samples are empty)."""
    try:
        samples = read_directly(value)
        if samples is None:
            samples = decoder.decode_example(value).get_all_samples().data[0].numpy()
    except Exception as error:  # torchcodec raises RuntimeError/ValueError depending on the container
        if "No audio frames" in str(error):
            return np.zeros(0, np.float32), "no audio frames (empty or truncated file)"
        return np.zeros(0, np.float32), f"cannot be decoded ({type(error).__name__}: {error})"
    problem = ""
    if samples.size == 0:
        problem = "no audio frames (empty or truncated file)"
    elif not np.isfinite(samples).all():
        problem = "contains NaN or inf samples"
    elif samples.size < min_samples:
        problem = (
            f"is {samples.size} samples long ({1000 * samples.size / SAMPLING_RATE:.1f} ms), shorter than "
            f"one {1000 * min_samples / SAMPLING_RATE:.0f} ms analysis window"
        )
    return (np.zeros(0, np.float32), problem) if problem else (samples, "")


def clip_decoder() -> Audio:
    """The decoder of every clip: 16 kHz mono, whatever the file's rate and channels."""
    return Audio(sampling_rate=SAMPLING_RATE, num_channels=1)


def _decode_batch(batch: dict, audio_column: str, min_samples: int) -> dict:
    one_thread_if_forked()
    decoder = clip_decoder()
    decoded = [decode_clip(decoder, value, min_samples) for value in batch[audio_column]]
    return {WAVEFORM_COLUMN: [samples for samples, _ in decoded], "_audio_problem": [p for _, p in decoded]}


def decode_and_check(
    dataset: Dataset,
    split: str,
    audio_column: str = "audio",
    skip_corrupt: bool = False,
    min_samples: int = MIN_SAMPLES,
    num_proc: int | None = None,
) -> tuple[Dataset, list[dict]]:
    """The split with a ``waveform`` column (16 kHz mono float32), and the clips skipped.

    A bad clip raises a ValueError naming every bad clip of the split (row and file) and the fix, unless
    ``skip_corrupt``: then the clips are dropped and returned as ``{"split", "row", "file", "problem"}``.
    The audio column is kept undecoded (its path and bytes), so reading a row never decodes again.
    ``num_proc`` decodes in that many processes (datasets' ``map``): the same waveforms and the same errors.
    """
    decoded, unusable = find_unusable_clips(dataset, split, audio_column, min_samples, num_proc)
    return resolve_unusable_clips({split: decoded}, unusable, skip_corrupt)[split], unusable


def find_unusable_clips(
    dataset: Dataset,
    split: str,
    audio_column: str = "audio",
    min_samples: int = MIN_SAMPLES,
    num_proc: int | None = None,
) -> tuple[Dataset, list[dict]]:
    """Decode every clip once (in ``num_proc`` processes if given): the split with its ``waveform`` column (an
    unusable clip's is empty), and the unusable clips as ``{"split", "row", "file", "problem"}``.

    Each process decodes a contiguous shard and datasets joins them in order, so rows, waveforms and the clips
    named are those of one process; the fingerprint does not depend on ``num_proc``, so either reads the
    other's cache."""
    if audio_column not in dataset.column_names:
        raise ValueError(
            f"split {split!r} has no audio column {audio_column!r}; its columns are {dataset.column_names}"
        )
    encoded = dataset.cast_column(audio_column, Audio(decode=False))
    features = Features(
        {**encoded.features, WAVEFORM_COLUMN: List(Value("float32")), "_audio_problem": Value("string")}
    )
    decoded = encoded.map(
        _decode_batch,
        batched=True,
        batch_size=64,
        writer_batch_size=64,  # a batch of 10 s clips is 40 MB: keep the writer's buffer small
        fn_kwargs={"audio_column": audio_column, "min_samples": min_samples},
        features=features,
        num_proc=num_proc,
        desc=f"decoding and checking the {split} clips",
    )
    problems = np.asarray(decoded["_audio_problem"])
    bad = np.flatnonzero(problems != "")
    paths = encoded.select(bad)[audio_column] if bad.size else []
    unusable = [
        {"split": split, "row": int(row), "file": value.get("path") or "in-memory bytes", "problem": problem}
        for row, value, problem in zip(bad, paths, problems[bad], strict=True)
    ]
    return decoded.remove_columns("_audio_problem"), unusable


def resolve_unusable_clips(
    splits: dict[str, Dataset], unusable: list[dict], skip_corrupt: bool
) -> dict[str, Dataset]:
    """Raise one error naming every unusable clip of every split, or (``skip_corrupt``) drop and log them."""
    described = [f"{s['split']} row {s['row']} ({s['file']}): {s['problem']}" for s in unusable]
    if unusable and not skip_corrupt:
        listed = "\n  ".join(described[:30]) + (
            f"\n  ... and {len(described) - 30} more" if len(described) > 30 else ""
        )
        raise ValueError(
            f"{len(unusable)} clip(s) cannot be used:\n  {listed}\n"
            "Replace or remove these files, or pass --skip_corrupt to skip (and list) such clips."
        )
    for line in described:
        logger.warning(f"Skipping {line}")
    result = {}
    for split, dataset in splits.items():
        bad = {s["row"] for s in unusable if s["split"] == split}
        if bad:
            logger.warning(f"{split}: skipped {len(bad)} unusable clip(s) of {len(dataset)}")
            dataset = dataset.select([row for row in range(len(dataset)) if row not in bad])
        result[split] = dataset
    return result
