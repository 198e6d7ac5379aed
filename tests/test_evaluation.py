"""`hf-add evaluate` goes through the training data path: it reproduces the test metrics of results.json."""

from __future__ import annotations

import json

import pytest
import torch

from hf_add.cli import main
from hf_add.evaluation import evaluate_model
from hf_add.geometry import GEOMETRY_SUMMARIES

from .audio_fixtures import write_audiofolder


@pytest.fixture(scope="module")
def trained(trained_run):
    """(data, fold 1's model, its results, its test rows) of the session's trained run."""
    return trained_run.data, trained_run.model(1), trained_run.results["folds"][0], trained_run.fold_rows(1)


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
