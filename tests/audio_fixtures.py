"""Audio folders written on the fly (WAV files + metadata.csv), loadable with load_dataset("audiofolder")."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import soundfile as sf


def tone(label_index: int, sample_rate: int, seconds: float, channels: int, rng: np.random.Generator):
    """A noisy sine whose pitch depends on the label, so tiny models can tell labels apart."""
    t = np.arange(int(sample_rate * seconds)) / sample_rate
    wave = 0.5 * np.sin(2 * np.pi * 220.0 * (label_index + 1) * t) + 0.05 * rng.standard_normal(t.size)
    wave = wave.astype(np.float32)
    return np.stack([wave, 0.5 * wave], axis=1) if channels == 2 else wave


def write_audiofolder(
    path: str | Path,
    labels: Sequence[str],
    n_per_label: int,
    sample_rates: Sequence[int] = (16000,),
    channels: Sequence[int] = (1,),
    seed: int = 0,
    seconds: float = 1.0,
    num_folds: int = 2,
    extra_rows: Sequence[dict] = (),
) -> Path:
    """Write ``n_per_label`` clips per label, cycling through sample rates and channel counts.

    metadata.csv has columns ``file_name, label, fold`` (folds 1..num_folds, balanced per label).
    ``extra_rows`` are added as given, e.g. ``{"file_name": "bad.wav", "label": "yes", "fold": 1,
    "bytes": b"not audio"}`` to write a corrupt file, ``"samples": 0`` for an empty clip, or ``"wave": array``
    for a 32-bit float clip (which can hold NaN).
    """
    root = Path(path)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows = []
    for label_index, label in enumerate(labels):
        for k in range(n_per_label):
            i = len(rows)
            rate, chans = sample_rates[i % len(sample_rates)], channels[i % len(channels)]
            name = f"{label}_{k}.wav"
            sf.write(root / name, tone(label_index, rate, seconds, chans, rng), rate)
            rows.append({"file_name": name, "label": label, "fold": k % num_folds + 1})
    for row in extra_rows:
        row = dict(row)
        if "bytes" in row:
            (root / row["file_name"]).write_bytes(row.pop("bytes"))
        elif "wave" in row:  # 32-bit float WAV: can hold NaN / inf
            sf.write(root / row["file_name"], row.pop("wave"), 16000, subtype="FLOAT")
        else:
            sf.write(root / row["file_name"], np.zeros(row.pop("samples"), np.float32), 16000)
        rows.append(row)
    with open(root / "metadata.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["file_name", "label", "fold"])
        writer.writeheader()
        writer.writerows(rows)
    return root


def write_parquet_shards(
    path: str | Path,
    labels: Sequence[str],
    n_per_label: int,
    train_shards: int,
    seconds: float = 0.3,
    seed: int = 0,
    bad_train_clips: int = 0,
) -> Path:
    """Parquet shards ``train-K.parquet`` (classes interleaved) and ``test-0.parquet`` with embedded WAV bytes,
    loadable with load_dataset("parquet", data_dir=path); every other clip goes to train. The first
    ``bad_train_clips`` training rows of shard 0 hold bytes that are not audio (``bad-K.wav``)."""
    import io

    from datasets import Audio, Dataset

    root = Path(path)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows = []
    for k in range(n_per_label):
        for label_index, label in enumerate(labels):
            buffer = io.BytesIO()
            sf.write(buffer, tone(label_index, 16000, seconds, 1, rng), 16000, format="WAV")
            rows.append({"audio": {"bytes": buffer.getvalue(), "path": f"{label}_{k}.wav"}, "label": label})
    train, test = rows[0::2], rows[1::2]
    bad = [
        {"audio": {"bytes": b"not audio", "path": f"bad-{k}.wav"}, "label": labels[0]}
        for k in range(bad_train_clips)
    ]
    shards = [train[i::train_shards] for i in range(train_shards)]
    shards[0] = bad + shards[0]
    for name, part in [*((f"train-{i}", shard) for i, shard in enumerate(shards)), ("test-0", test)]:
        columns = {"audio": [r["audio"] for r in part], "label": [r["label"] for r in part]}
        Dataset.from_dict(columns).cast_column("audio", Audio(decode=False)).to_parquet(
            root / f"{name}.parquet"
        )
    return root
