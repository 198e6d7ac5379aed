"""Streaming against the cached path: training throughput, the first epoch from raw files, and the disk written.

A generated set of 1 s clips (10 words, 16 kHz 16-bit WAV bytes in Parquet shards, the classes mixed in every
shard) is trained on for one epoch by ``hf-add train`` (ast-mini, 100 input frames, batch 32, CE + ADD) in
two ways:

- cached: the clips are decoded, checked and turned into features before training (datasets cache), then the
  model trains from the cache (no loader workers);
- streaming (``--streaming true``): nothing before training; 2 DataLoader workers decode, check and compute
  features while the model trains.

Each run is a fresh process with its own empty datasets cache (``HF_DATASETS_CACHE``), the main process with
one torch thread (``OMP_NUM_THREADS=1``), and the runs alternate (cached, streaming, streaming, cached, ...).
Per run: the wall time of the whole command (model set-up, preprocessing where there is any, the epoch, the
test on 200 clips), Trainer's ``train_runtime`` (the training loop alone), and the bytes written to the
datasets cache. The throughput ratio is cached ``train_runtime`` / streaming ``train_runtime`` over adjacent
pairs: at least 0.9 is the target.

    python scripts/benchmarks/bench_streaming.py [--clips 10000] [--repeats 2]
"""

from __future__ import annotations

import argparse
import io
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import soundfile as sf
from bench_data import WORDS
from bench_machine import describe
from bench_preprocessing import cache_bytes, load_average
from datasets import Audio, Dataset, disable_progress_bars

TEST_CLIPS = 200
SHARDS = 8


def write_shards(root: str, clips: int) -> None:
    """``clips`` training clips in ``SHARDS`` Parquet shards and ``TEST_CLIPS`` test clips in one."""
    rng = np.random.default_rng(0)
    t = np.arange(16000) / 16000

    def clip(index: int) -> dict:
        word = index % len(WORDS)
        pitch = 200 * (word + 1) * (1 + 0.1 * rng.standard_normal())
        wave = 0.3 * np.sin(2 * np.pi * pitch * t * (1 + 0.5 * t)) + 0.05 * rng.standard_normal(t.size)
        buffer = io.BytesIO()
        sf.write(buffer, wave.astype(np.float32), 16000, subtype="PCM_16", format="WAV")
        return {"audio": {"bytes": buffer.getvalue(), "path": f"{index}.wav"}, "label": WORDS[word]}

    def write(name: str, indices) -> None:
        rows = [clip(i) for i in indices]
        columns = {"audio": [r["audio"] for r in rows], "label": [r["label"] for r in rows]}
        Dataset.from_dict(columns).cast_column("audio", Audio(decode=False)).to_parquet(
            os.path.join(root, f"{name}.parquet")
        )

    for shard in range(SHARDS):
        write(f"train-{shard}", range(shard, clips, SHARDS))
    write("test-0", range(clips, clips + TEST_CLIPS))


def train(root: str, work: str, streaming: bool, clips: int) -> dict:
    cache, output = tempfile.mkdtemp(dir=work), tempfile.mkdtemp(dir=work)
    steps = clips // 32
    argv = [
        sys.executable, "-m", "hf_add.cli", "train", "--model_name_or_path", "ast-mini", "--ast_max_length", "100",
        "--dataset_name", "parquet", "--data_dir", root, "--test_split", "test", "--class_names", *WORDS,
        "--loss", "add", "--per_device_train_batch_size", "32", "--max_steps", str(steps),
        "--save_strategy", "no", "--report_to", "none", "--use_cpu", "true", "--disable_tqdm", "true",
        "--output_dir", output, "--overwrite_output_dir", "true",
        *(["--streaming", "true", "--dataloader_num_workers", "2"] if streaming else []),
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_DATASETS_CACHE": cache}
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"hf-add train failed:\n{done.stderr[-3000:]}")
    runtime = float(re.search(r"'train_runtime': '([\d.]+)'", done.stdout + done.stderr).group(1))
    written = cache_bytes(cache)
    shutil.rmtree(cache)
    shutil.rmtree(output)
    return {"wall_s": wall, "train_s": runtime, "cache_bytes": written, "steps": steps}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--clips", type=int, default=10000, help="training clips (one epoch is clips / 32 steps)"
    )
    parser.add_argument("--repeats", type=int, default=2, help="runs of each mode")
    args = parser.parse_args()
    disable_progress_bars()
    print(describe())
    work = tempfile.mkdtemp(prefix="bench_streaming_")
    try:
        root = os.path.join(work, "shards")
        os.makedirs(root)
        write_shards(root, args.clips)
        print(f"{args.clips} training clips in {SHARDS} shards, {TEST_CLIPS} test clips: "
              f"{cache_bytes(root) / 1e6:.0f} MB of Parquet")  # fmt: skip
        order = [s for i in range(args.repeats) for s in ((False, True) if i % 2 == 0 else (True, False))]
        runs: dict[bool, list[dict]] = {False: [], True: []}
        print(f"\n{'mode':>9} {'load avg':>15} {'wall s':>8} {'train s':>8} {'clips/s':>8} {'cache MB':>9}")
        for streaming in order:
            before = load_average()
            result = train(root, work, streaming, args.clips)
            runs[streaming].append(result)
            print(
                f"{'streaming' if streaming else 'cached':>9} {before:>15} {result['wall_s']:>8.1f} "
                f"{result['train_s']:>8.1f} {result['steps'] * 32 / result['train_s']:>8.1f} "
                f"{result['cache_bytes'] / 1e6:>9.1f}",
                flush=True,
            )
        print(f"load average after: {load_average()}\n")
        ratios = [c["train_s"] / s["train_s"] for c, s in zip(runs[False], runs[True], strict=True)]
        print("| path | first epoch from raw files (s, whole command) | training loop (clips/s) | "
              "throughput vs cached | datasets cache per 1,000 clips |")  # fmt: skip
        print("|---|---:|---:|---:|---:|")
        for streaming, done in runs.items():
            wall = statistics.median(r["wall_s"] for r in done)
            speed = statistics.median(r["steps"] * 32 / r["train_s"] for r in done)
            ratio = "1" if not streaming else f"{statistics.median(ratios):.2f} (pairs: "
            ratio += "" if not streaming else ", ".join(f"{r:.2f}" for r in ratios) + ")"
            disk = statistics.median(r["cache_bytes"] for r in done) / (args.clips + TEST_CLIPS) * 1000 / 1e6
            print(f"| {'streaming, 2 loader workers' if streaming else 'cached'} | {wall:.0f} | {speed:.0f} | "
                  f"{ratio} | {disk:.1f} MB |")  # fmt: skip
    finally:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
