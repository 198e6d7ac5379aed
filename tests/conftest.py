"""Shared fixtures. Builders that tests call with their own arguments (tiny models, rows, audiofolders) are
plain functions in tests/tiny.py and tests/audio_fixtures.py; what several test files share as it is, a
trained run, is a fixture here, made once per session."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from .audio_fixtures import write_audiofolder

WORDS = ["yes", "no", "up"]


@dataclass
class TrainedRun:
    data: Path  # the audiofolder: 3 words x 8 clips, column fold = 1 or 2
    output: Path  # the run directory: fold1/, fold2/, results.json
    results: dict

    def model(self, fold: int = 1) -> Path:
        return self.output / f"fold{fold}"

    def fold_rows(self, fold: int = 1):
        """The rows a fold's model was tested on (its held-out fold)."""
        from datasets import load_dataset

        rows = load_dataset("audiofolder", data_dir=str(self.data), split="train")
        return rows.filter(lambda value: value == fold, input_columns="fold")


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory) -> TrainedRun:
    """`hf-add train`: ast-tiny, 20 steps of CE + ADD per fold on 3 words x 8 tone clips (16 and 44.1 kHz,
    mono and stereo), 2-fold cross-validation."""
    from hf_add.cli import main

    root = tmp_path_factory.mktemp("trained_run")
    data = write_audiofolder(
        root / "data", WORDS, n_per_label=8, sample_rates=(16000, 44100), channels=(1, 2)
    )
    output = root / "run"
    argv = [
        "train",
        "--model_name_or_path",
        "ast-tiny",
        "--ast_max_length",
        "64",
        "--dataset_name",
        "audiofolder",
    ]
    argv += ["--data_dir", str(data), "--fold_column", "fold", "--loss", "add", "--max_steps", "20"]
    argv += [
        "--per_device_train_batch_size",
        "4",
        "--per_device_eval_batch_size",
        "5",
        "--learning_rate",
        "3e-3",
    ]
    argv += ["--output_dir", str(output), "--report_to", "none", "--save_strategy", "no", "--use_cpu", "true"]
    argv += ["--disable_tqdm", "true"]
    assert main(argv) == 0
    return TrainedRun(data, output, json.loads((output / "results.json").read_text()))
