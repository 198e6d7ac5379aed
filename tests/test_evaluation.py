"""`hf-add evaluate` goes through the training data path: it reproduces the test metrics of results.json."""

from __future__ import annotations

import json

import pytest
import torch
from datasets import load_dataset

from hf_add import finetune
from hf_add.cli import main
from hf_add.evaluation import evaluate_model
from hf_add.geometry import GEOMETRY_SUMMARIES

from .audio_fixtures import write_audiofolder


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """ast-tiny trained 20 steps on 3 words (16 and 44.1 kHz, mono and stereo clips), fold 1 as test."""
    root = tmp_path_factory.mktemp("evaluation")
    data = write_audiofolder(
        root / "data", ["yes", "no", "up"], n_per_label=8, sample_rates=(16000, 44100), channels=(1, 2)
    )
    output = root / "run"
    argv = ["--model_name_or_path", "ast-tiny", "--ast_max_length", "64", "--dataset_name", "audiofolder"]
    argv += ["--data_dir", str(data), "--fold_column", "fold", "--cv_folds", "1", "--loss", "ce"]
    argv += ["--max_steps", "20", "--per_device_train_batch_size", "4", "--per_device_eval_batch_size", "5"]
    argv += ["--learning_rate", "3e-3", "--output_dir", str(output), "--report_to", "none"]
    argv += ["--save_strategy", "no", "--use_cpu", "true", "--disable_tqdm", "true"]
    results = finetune.main(argv)
    test = load_dataset("audiofolder", data_dir=str(data), split="train")
    test = test.filter(lambda fold: fold == 1, input_columns="fold")
    return data, output / results["folds"][0]["fold"], results["folds"][0], test


@pytest.mark.parametrize("batch_size", [1, 7])
def test_evaluate_reproduces_test_accuracy_of_results_json(trained, batch_size):
    _, model_dir, fold, test = trained
    evaluation = evaluate_model(str(model_dir), test, batch_size=batch_size, device="cpu")
    assert evaluation["num_samples"] == len(test) == 12
    assert evaluation["accuracy"] == fold["accuracy"] > 0.5  # better than chance (1/3): a trained model
    for name in GEOMETRY_SUMMARIES:  # the same embeddings, not only the same argmax
        assert evaluation["geometry"][name] == pytest.approx(fold[name], rel=1e-5, abs=1e-6), name


def test_evaluate_under_bf16_autocast(trained, tmp_path):
    data, model_dir, fold, test = trained
    evaluation = evaluate_model(str(model_dir), test, device="cpu", precision="bf16")
    assert 0.0 <= evaluation["accuracy"] <= 1.0
    assert all(torch.isfinite(torch.tensor(v)) for v in evaluation["geometry"].values())
    report = tmp_path / "bf16.json"
    argv = ["evaluate", str(model_dir), "--data_dir", str(data), "--split", "train", "--bf16"]
    assert main([*argv, "--output", str(report)]) == 0
    assert json.loads(report.read_text())["num_samples"] == 24
    with pytest.raises(ValueError, match="precision must be one of"):
        evaluate_model(str(model_dir), test, precision="int8")
