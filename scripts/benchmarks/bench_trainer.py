"""Median training-step time of ADDTrainer (CE + ADD) against the plain Trainer (CE), side by side.

Both train the same small AST (from a config, no download) on the same random batches; runs alternate
(plain, ADD, plain, ADD, ...) so that load on the machine affects both alike. The step time is measured
from on_step_begin to on_step_end (forward, backward, optimizer step), after warm-up steps.

    python scripts/benchmarks/bench_trainer.py [--steps 30] [--repeats 3] [--batch_size 32] [--device cpu]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch
from bench_machine import describe
from transformers import ASTConfig, ASTForAudioClassification, Trainer, TrainerCallback, TrainingArguments

from hf_add import ADDLoss, ADDTrainer
from hf_add.models.loading import ast_from_config


class StepTimer(TrainerCallback):
    def __init__(self, device: str):
        self.device = device
        self.times: list[float] = []

    def _sync(self):
        if self.device.startswith("cuda"):
            torch.cuda.synchronize()

    def on_step_begin(self, args, state, control, **kwargs):
        self._sync()
        self._start = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        self._sync()
        self.times.append(time.perf_counter() - self._start)


class RandomAudio(torch.utils.data.Dataset):
    def __init__(self, n: int, frames: int, mels: int, num_labels: int):
        generator = torch.Generator().manual_seed(0)
        self.values = torch.randn(n, frames, mels, generator=generator)
        self.labels = torch.randint(num_labels, (n,), generator=generator)

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return {"input_values": self.values[i], "labels": self.labels[i]}


def small_ast(num_labels: int) -> ASTForAudioClassification:
    torch.manual_seed(0)
    config = ASTConfig(
        hidden_size=192,
        num_hidden_layers=4,
        num_attention_heads=3,
        intermediate_size=768,
        num_mel_bins=128,
        max_length=128,
        num_labels=num_labels,
    )
    return ast_from_config(config)


def median_step(use_add: bool, args: argparse.Namespace, warmup: int = 3) -> float:
    timer = StepTimer(args.device)
    dataset = RandomAudio(args.batch_size * (args.steps + warmup), 128, 128, num_labels=35)
    with tempfile.TemporaryDirectory() as output_dir:
        training_args = TrainingArguments(
            output_dir=output_dir,
            per_device_train_batch_size=args.batch_size,
            max_steps=args.steps + warmup,
            learning_rate=1e-4,
            report_to=[],
            save_strategy="no",
            logging_steps=10,
            disable_tqdm=True,
            use_cpu=args.device == "cpu",
            dataloader_num_workers=0,
        )
        common = dict(model=small_ast(35), args=training_args, train_dataset=dataset, callbacks=[timer])
        trainer = ADDTrainer(**common, embedding_loss=ADDLoss()) if use_add else Trainer(**common)
        trainer.train()
    return statistics.median(timer.times[warmup:])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    results = {False: [], True: []}
    for _ in range(args.repeats):
        for use_add in (False, True):
            results[use_add].append(median_step(use_add, args))
    plain, add = statistics.median(results[False]), statistics.median(results[True])
    print(
        f"{describe(args.device)}\nAST 4 layers × 192, 128×128 input, batch {args.batch_size}, {args.device}, "
        f"{args.steps} timed steps × {args.repeats} alternating runs\n"
    )
    print("| trainer | median step (ms) | ratio |")
    print("|---|---|---|")
    print(f"| Trainer (CE) | {plain * 1e3:.1f} | 1.000 |")
    print(f"| ADDTrainer (CE + ADD) | {add * 1e3:.1f} | {add / plain:.3f} |")


if __name__ == "__main__":
    main()
