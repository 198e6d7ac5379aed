"""Tiny models and in-memory datasets for trainer tests (no downloads)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import torch
from torch import nn
from transformers import (
    ASTConfig,
    ASTForAudioClassification,
    PretrainedConfig,
    PreTrainedModel,
    TrainingArguments,
)
from transformers.modeling_outputs import SequenceClassifierOutput

from hf_add.models.loading import ast_from_config

REPO_ROOT = Path(__file__).parent.parent
NUM_LABELS = 4
AST_FRAMES, AST_MELS = 32, 16


def tiny_ast(seed: int = 0, num_labels: int = NUM_LABELS) -> ASTForAudioClassification:
    torch.manual_seed(seed)
    config = ASTConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        num_mel_bins=AST_MELS,
        max_length=AST_FRAMES,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        num_labels=num_labels,
    )
    return ast_from_config(config)


class TinyConfig(PretrainedConfig):
    model_type = "hf_add_tiny"

    def __init__(self, input_dim: int = 8, hidden_size: int = 16, **kwargs):
        super().__init__(**kwargs)
        self.input_dim = input_dim
        self.hidden_size = hidden_size


class TinyForAudioClassification(PreTrainedModel):
    """A classifier whose forward takes no **kwargs (so Trainer passes it no num_items_in_batch)."""

    config_class = TinyConfig

    def __init__(self, config: TinyConfig):
        super().__init__(config)
        self.encoder = nn.Sequential(nn.Linear(config.input_dim, config.hidden_size), nn.Tanh())
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def forward(self, input_values, labels=None):
        logits = self.classifier(self.encoder(input_values))
        loss = None if labels is None else nn.functional.cross_entropy(logits, labels)
        return SequenceClassifierOutput(loss=loss, logits=logits)


def tiny_mlp(seed: int = 0) -> TinyForAudioClassification:
    torch.manual_seed(seed)
    return TinyForAudioClassification(TinyConfig(num_labels=NUM_LABELS))


class ListDataset(torch.utils.data.Dataset):
    def __init__(self, rows: list[dict]):
        self.rows = rows

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, index):
        return self.rows[index]


def random_rows(n: int, shape: tuple[int, ...], seed: int = 0, soft: bool = False) -> list[dict]:
    """Rows {'input_values', 'labels'}; labels are class ids or mixup-style probabilities."""
    generator = torch.Generator().manual_seed(seed)
    values = torch.randn(n, *shape, generator=generator)
    labels = torch.arange(n) % NUM_LABELS
    if soft:
        one_hot = nn.functional.one_hot(labels, NUM_LABELS).float()
        lam = torch.rand(n, 1, generator=generator)
        labels = lam * one_hot + (1 - lam) * one_hot.roll(1, dims=0)
    return [{"input_values": values[i], "labels": labels[i]} for i in range(n)]


def batch_of(rows: list[dict]) -> dict[str, torch.Tensor]:
    return {key: torch.stack([row[key] for row in rows]) for key in rows[0]}


def torchrun_on_cpu(module: str, *args: str, env: dict[str, str] | None = None) -> None:
    """``python -m torch.distributed.run --nproc_per_node=2 -m MODULE ARGS`` on the CPU (gloo), from the
    repository root, with ``env`` added to the environment; fails with the workers' stderr."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_addr=127.0.0.1",
               f"--master_port={port}", "-m", module, *args]  # fmt: skip
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1", **(env or {})}
    result = subprocess.run(command, env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]


def cpu_training_args(output_dir, **overrides) -> TrainingArguments:
    """Plain SGD at a constant rate on the CPU, a log every step, no saving: steps a test can redo by hand."""
    defaults = dict(
        output_dir=str(output_dir),
        per_device_train_batch_size=8,
        per_device_eval_batch_size=8,
        learning_rate=0.1,
        optim="sgd",
        lr_scheduler_type="constant",
        weight_decay=0.0,
        max_grad_norm=0.0,
        report_to=[],
        use_cpu=True,
        save_strategy="no",
        logging_steps=1,
        seed=0,
        disable_tqdm=True,
    )
    return TrainingArguments(**{**defaults, **overrides})
