"""Preprocessing speed with 1 and 2 worker processes (``--preprocessing_num_workers``), and the disk that the cached
path writes per 1,000 clips.

Preprocessing is what ``hf-add train`` does before training (``make_folds`` as ``hf_add.runs`` calls it): every
clip of a generated audiofolder (1 s 16-bit WAV clips at 16 kHz, like Speech Commands) decoded, checked and
stored as a float32 waveform (the decode cache), then its AST features computed and stored (the feature cache;
128 frames x 128 mel bins, as for KS2). Each run starts from an empty datasets cache of its own, so nothing is
read from an earlier run; the runs alternate (1, 2, 2, 1, ...) so that load from other processes hits both
worker counts alike, and the speed-up is the median over adjacent pairs. The disk written is the size of the
files each phase adds to the cache. The load average (``/proc/loadavg``) is printed beside every run: the
machine may be shared.

    OMP_NUM_THREADS=1 python scripts/benchmarks/bench_preprocessing.py [--clips 3000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time

import torch
from bench_data import WORDS, write_clips
from bench_machine import describe
from datasets import disable_progress_bars, load_dataset
from transformers import ASTFeatureExtractor

from hf_add.data import AudioClassificationCollator, get_spec, make_folds
from hf_add.data.presets import split_by_column


def cache_bytes(folder: str) -> int:
    return sum(
        os.path.getsize(os.path.join(root, name)) for root, _, names in os.walk(folder) for name in names
    )


def load_average() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def preprocess(root: str, cache: str, num_proc: int | None, frames: int) -> dict:
    """One preprocessing run on an empty cache: seconds and bytes written per phase."""
    start = time.perf_counter()
    data = split_by_column(load_dataset("audiofolder", data_dir=root, cache_dir=cache), "partition", root)
    loaded, loaded_bytes = time.perf_counter(), cache_bytes(cache)
    extractor = ASTFeatureExtractor(num_mel_bins=128, max_length=frames, sampling_rate=16000)
    collator = AudioClassificationCollator(extractor, num_labels=0)
    marks = []

    def cache_split(dataset):
        marks.append((time.perf_counter(), cache_bytes(cache)))  # the first split's features begin here
        return collator.cache_split(dataset, num_proc=num_proc)

    spec = get_spec(path="audiofolder", data_dir=root, split_column="partition", test_split="test")
    folds, _ = make_folds(data, spec, prepare_split=cache_split, num_proc=num_proc)
    end, end_bytes = time.perf_counter(), cache_bytes(cache)
    clips = len(folds[0].train) + len(folds[0].test)
    decoded, decoded_bytes = marks[0]
    return {
        "clips": clips,
        "load_s": loaded - start,
        "decode_s": decoded - loaded,
        "features_s": end - decoded,
        "decode_bytes": decoded_bytes - loaded_bytes,
        "features_bytes": end_bytes - decoded_bytes,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clips", type=int, default=3000, help="clips in all (10 words, 10%% of them test)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each worker count")
    parser.add_argument("--frames", type=int, default=128, help="AST frames (KS2: 128)")
    args = parser.parse_args()
    disable_progress_bars()
    print(describe())
    print(f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}, torch threads {torch.get_num_threads()}")
    work = tempfile.mkdtemp(prefix="bench_preprocessing_")
    try:
        root = os.path.join(work, "clips")
        os.makedirs(root)
        per_word = args.clips // len(WORDS)
        write_clips(root, per_word - per_word // 10, per_word // 10)
        order = [n for i in range(args.repeats) for n in ((1, 2) if i % 2 == 0 else (2, 1))]
        runs: dict[int, list[dict]] = {1: [], 2: []}
        print(f"\n{'workers':>7} {'load avg':>15} {'clips':>6} {'load s':>7} {'decode s':>9} {'features s':>11} "
              f"{'clips/s':>8} {'decode MB/1k':>13} {'features MB/1k':>15}")  # fmt: skip
        for workers in order:
            cache = tempfile.mkdtemp(dir=work)
            before = load_average()
            result = preprocess(root, cache, None if workers == 1 else workers, args.frames)
            shutil.rmtree(cache)
            result["clips_per_s"] = result["clips"] / (result["decode_s"] + result["features_s"])
            runs[workers].append(result)
            per_1k = 1000 / result["clips"] / 1e6
            print(
                f"{workers:>7} {before:>15} {result['clips']:>6} {result['load_s']:>7.2f} {result['decode_s']:>9.2f} "
                f"{result['features_s']:>11.2f} {result['clips_per_s']:>8.0f} "
                f"{result['decode_bytes'] * per_1k:>13.1f} {result['features_bytes'] * per_1k:>15.1f}",
                flush=True,
            )
        print(f"load average after: {load_average()}\n")
        pairs = [b["clips_per_s"] / a["clips_per_s"] for a, b in zip(runs[1], runs[2], strict=True)]
        print("| workers | decode + check (clips/s) | features (clips/s) | both (clips/s) | speed-up |")
        print("|---:|---:|---:|---:|---:|")
        for workers, done in runs.items():
            decode = statistics.median(r["clips"] / r["decode_s"] for r in done)
            features = statistics.median(r["clips"] / r["features_s"] for r in done)
            both = statistics.median(r["clips_per_s"] for r in done)
            speed_up = "1" if workers == 1 else f"{statistics.median(pairs):.2f} (pairs: "
            speed_up += "" if workers == 1 else ", ".join(f"{p:.2f}" for p in pairs) + ")"
            print(f"| {workers} | {decode:.0f} | {features:.0f} | {both:.0f} | {speed_up} |")
        first = runs[1][0]
        per_1k = 1000 / first["clips"] / 1e6
        print(
            f"\ndisk written per 1,000 clips: decode cache {first['decode_bytes'] * per_1k:.1f} MB, feature cache "
            f"{first['features_bytes'] * per_1k:.1f} MB, together "
            f"{(first['decode_bytes'] + first['features_bytes']) * per_1k:.1f} MB"
        )
    finally:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
