"""`hf-add evaluate` goes through the training data path: it reproduces the test metrics of results.json."""

from __future__ import annotations

import json

import pytest
import torch
from datasets import load_dataset

from hf_add.cli import main
from hf_add.commands import train
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
    results = train.main(argv)
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


def test_evaluate_applies_the_presets_label_rules(tmp_path):
    """An IEMOCAP-shaped folder: `hf-add evaluate --dataset er` merges "excited" into "happy" and drops the
    other emotions, as training does; without the preset those labels are unknown to the model."""
    from transformers import ASTConfig, ASTFeatureExtractor

    from hf_add.models.loading import ast_from_config

    classes = ["neutral", "happy", "angry", "sad"]
    model_dir = tmp_path / "model"
    config = ASTConfig(
        hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64, num_mel_bins=128,
        max_length=64, id2label=dict(enumerate(classes)), label2id={name: i for i, name in enumerate(classes)},
    )  # fmt: skip
    ast_from_config(config).save_pretrained(model_dir)
    ASTFeatureExtractor(num_mel_bins=128, max_length=64).save_pretrained(model_dir)
    data = write_audiofolder(
        tmp_path / "data", [*classes, "excited", "frustrated"], n_per_label=2, seconds=0.3
    )
    report = tmp_path / "er.json"
    argv = ["evaluate", str(model_dir), "--data_dir", str(data), "--split", "train"]
    assert main([*argv, "--dataset", "er", "--output", str(report)]) == 0
    evaluation = json.loads(report.read_text())
    assert evaluation["num_samples"] == 10  # 4 classes + excited (as happy), 2 clips each; frustrated dropped
    assert evaluation["class_names"] == classes
    with pytest.raises(
        ValueError, match=r"labels \['excited', 'frustrated'\].*not among the model's classes"
    ):
        main(argv)
