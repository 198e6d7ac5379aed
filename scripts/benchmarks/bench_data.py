"""Training throughput of `hf-add train` (audio clips in, the whole data path) against the same model fed
pre-made features, in one process, runs interleaved.

Both sides are ``hf_add.runs.run`` with the same arguments, on the same generated audiofolder (1 s
16-bit WAV clips at 16 kHz, like the spoken-commands set): same model, loss, optimizer and Trainer. The only
difference is the data: "hf-add train" reads the dataset the decode-once pass made and batches it with the
training collator; "pre-made features" swaps in, before training, a list of the very features the collator
produces for those clips and a collator that only stacks them. A step is timed from the end of the previous
step to its own end (data loading, forward, backward, optimizer step), after warm-up steps; runs alternate
(features, audio, audio, features, ...) so that load from other processes hits both alike, and the ratio is
the median over adjacent pairs of runs.

    python scripts/benchmarks/bench_data.py [--model ast-mini] [--batch_size 32] [--steps 20] [--repeats 6]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import numpy as np
import soundfile as sf
import torch
from bench_machine import describe
from transformers import TrainerCallback

from hf_add import runs
from hf_add.commands.train import parse_config
from hf_add.data import AudioClassificationCollator, make_folds
from hf_add.data.fbank import BatchedFbank
from hf_add.models.loading import load_model_and_extractor

WORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")


def write_clips(root: str, clips_per_word: int, test_per_word: int) -> None:
    """1 s clips (a word-dependent chirp in noise), 16 kHz mono 16-bit, partition train / test."""
    rng = np.random.default_rng(0)
    t = np.arange(16000) / 16000
    lines = ["file_name,label,partition"]
    for w, word in enumerate(WORDS):
        for k in range(clips_per_word + test_per_word):
            pitch = 200 * (w + 1) * (1 + 0.1 * rng.standard_normal())
            wave = 0.3 * np.sin(2 * np.pi * pitch * t * (1 + 0.5 * t)) + 0.05 * rng.standard_normal(t.size)
            name = f"{word}_{k}.wav"
            sf.write(os.path.join(root, name), wave.astype(np.float32), 16000, subtype="PCM_16")
            lines.append(f"{name},{word},{'train' if k < clips_per_word else 'test'}")
    with open(os.path.join(root, "metadata.csv"), "w") as f:
        f.write("\n".join(lines) + "\n")


class StepClock(TrainerCallback):
    """Per step: data time (previous step end -> step begin) and total time (previous end -> this end)."""

    def __init__(self):
        self.data: list[float] = []
        self.total: list[float] = []
        self._last = None

    def on_train_begin(self, args, state, control, **kwargs):
        self._last = time.perf_counter()

    def on_step_begin(self, args, state, control, **kwargs):
        self.data.append(time.perf_counter() - self._last)

    def on_step_end(self, args, state, control, **kwargs):
        now = time.perf_counter()
        self.total.append(now - self._last)
        self._last = now


class PremadeFeatures(torch.utils.data.Dataset):
    def __init__(self, features: list[dict]):
        self.features = features

    def __len__(self):
        return len(self.features)

    def __getitem__(self, index):
        return self.features[index]


def stack(rows: list[dict]) -> dict[str, torch.Tensor]:
    return {key: torch.stack([torch.as_tensor(row[key]) for row in rows]) for key in rows[0]}


def timed_trainer(clock: StepClock, premade: PremadeFeatures | None):
    """ADDTrainer as run_fold builds it, plus the clock; with ``premade``, fed those features instead."""

    class TimedTrainer(runs.ADDTrainer):
        def __init__(self, *args, **kwargs):
            kwargs["callbacks"] = [*kwargs.get("callbacks", []), clock]
            if premade is not None:
                kwargs.update(train_dataset=premade, data_collator=stack)
            super().__init__(*args, **kwargs)

        # After training, run_fold saves, evaluates and writes a card: not measured, so skipped.
        def save_model(self, *args, **kwargs):
            pass

        def evaluate(self, *args, metric_key_prefix="eval", **kwargs):
            return {f"{metric_key_prefix}_accuracy": float("nan")}

        def create_model_card(self, *args, **kwargs):
            pass

    return TimedTrainer


def premade_features(argv: list[str]) -> PremadeFeatures:
    """The features the training collator gives the training clips (no augmentation by default)."""
    config = parse_config(argv)
    model_args, spec = config.model, config.data.spec()
    (fold, *_), _ = make_folds(spec.load(), spec, 1)
    _, extractor, kwargs = load_model_and_extractor(
        model_args.model_name_or_path, spec, fold.id2label, model_args.ast_max_length
    )
    collator = AudioClassificationCollator(extractor, len(fold.id2label), extractor_kwargs=kwargs)
    view = collator.prepare(fold.train)
    rows = []
    for start in range(0, len(view), 64):
        batch = collator([view[i] for i in range(start, min(start + 64, len(view)))])
        rows += [{k: v[i] for k, v in batch.items()} for i in range(len(batch["labels"]))]
    return PremadeFeatures(rows)


def run(argv: list[str], premade: PremadeFeatures | None, root: str) -> StepClock:
    clock = StepClock()
    config = parse_config([*argv, "--output_dir", tempfile.mkdtemp(dir=root)])
    runs.run(config, trainer_class=timed_trainer(clock, premade))
    return clock


def extractor_vs_batched(argv: list[str], batch_size: int, repeats: int) -> tuple[float, float]:
    """Median time of the extractor clip by clip and of BatchedFbank, on one batch of the clips."""
    config = parse_config(argv)
    model_args, spec = config.model, config.data.spec()
    (fold, *_), _ = make_folds(spec.load(), spec, 1)
    _, extractor, kwargs = load_model_and_extractor(
        model_args.model_name_or_path, spec, fold.id2label, model_args.ast_max_length
    )
    waves = list(fold.train.with_format("numpy")[:batch_size]["waveform"])
    batched = BatchedFbank.for_extractor(extractor, kwargs)
    times = {"extractor": [], "batched": []}
    for _ in range(repeats):
        start = time.perf_counter()
        extractor(waves, sampling_rate=16000, return_tensors="pt", **kwargs)
        times["extractor"].append(time.perf_counter() - start)
        start = time.perf_counter()
        batched(waves)
        times["batched"].append(time.perf_counter() - start)
    return statistics.median(times["extractor"]), statistics.median(times["batched"])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="ast-mini")
    parser.add_argument("--ast_max_length", type=int, default=100)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=20, help="timed steps per run")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=6, help="runs of each side, alternating")
    parser.add_argument("--clips_per_word", type=int, default=32)
    parser.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="more `hf-add train` flags")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as root:
        data_dir = os.path.join(root, "data")
        os.makedirs(data_dir)
        write_clips(data_dir, args.clips_per_word, test_per_word=2)
        argv = [
            "--model_name_or_path", args.model, "--ast_max_length", str(args.ast_max_length),
            "--dataset_name", "audiofolder", "--data_dir", data_dir,
            "--split_column", "partition", "--test_split", "test",
            "--loss", "ce", "--per_device_train_batch_size", str(args.batch_size),
            "--max_steps", str(args.warmup + args.steps), "--learning_rate", "1e-3",
            "--report_to", "none", "--save_strategy", "no",
            "--logging_steps", "1000", "--disable_tqdm", "true", "--use_cpu", "true",
            *args.extra,
        ]  # fmt: skip
        start = time.perf_counter()
        premade = premade_features(argv)
        prepare = time.perf_counter() - start
        clocks = {"features": [], "audio": []}
        for repeat in range(args.repeats):  # ABBA order: neither side always runs first
            for side in list(clocks)[:: 1 if repeat % 2 == 0 else -1]:
                clocks[side].append(run(argv, premade if side == "features" else None, root))
        extractor_s, batched_s = extractor_vs_batched(argv, args.batch_size, 2 * args.repeats + 1)

    def median(side: str, field: str) -> float:
        return statistics.median(t for clock in clocks[side] for t in getattr(clock, field)[args.warmup :])

    step = {side: median(side, "total") for side in clocks}
    data = {side: median(side, "data") for side in clocks}
    runs = {side: [statistics.median(c.total[args.warmup :]) for c in clocks[side]] for side in clocks}
    # Runs i of both sides are adjacent in time: their ratio is the least disturbed by other load.
    pairs = [f / a for f, a in zip(runs["features"], runs["audio"], strict=True)]
    print(
        f"{describe()}\n{args.model} (AST input {args.ast_max_length} frames), CE, batch {args.batch_size}, "
        f"{len(premade)} training clips of 1 s; {args.repeats} runs per side in ABBA order, {args.steps} timed "
        f"steps each; decoding and features cache, once: {prepare:.1f} s\n"
    )
    print("| input | median step (ms) | of which data (ms) | samples/s | throughput ratio |")
    print("|---|---:|---:|---:|---:|")
    for side, name in (("features", "pre-made features (model alone)"), ("audio", "`hf-add train` (audio)")):
        ratio = "1" if side == "features" else f"{statistics.median(pairs):.3f}"
        print(
            f"| {name} | {step[side] * 1e3:.1f} | {data[side] * 1e3:.1f} | "
            f"{args.batch_size / step[side]:.1f} | {ratio} |"
        )
    print(
        "\nthroughput ratio: median over the adjacent pairs of runs of (model-alone step / hf-add train step); "
        f"per pair: {', '.join(f'{r:.3f}' for r in pairs)}"
    )
    for side in clocks:
        print(f"median step of each {side} run (ms): {', '.join(f'{t * 1e3:.1f}' for t in runs[side])}")
    print(
        f"\nFeatures of one batch of {args.batch_size} clips: extractor clip by clip {extractor_s * 1e3:.1f} ms, "
        f"BatchedFbank {batched_s * 1e3:.1f} ms ({extractor_s / batched_s:.1f}x)"
    )


if __name__ == "__main__":
    main()
