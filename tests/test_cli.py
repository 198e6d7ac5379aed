"""The hf-add command line on a tiny generated dataset."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from huggingface_hub import HfApi

from hf_add.cli import main

from .audio_fixtures import write_audiofolder

FIXTURES = Path(__file__).parent / "fixtures" / "beats"


def test_help_lists_every_command(capsys):
    assert main(["--help"]) == 0
    text = capsys.readouterr().out
    for command in (
        "make-dataset",
        "train",
        "evaluate",
        "embed",
        "reproduce",
        "study",
        "convert-beats",
        "push",
    ):
        assert f"\n  {command}" in text
    assert main(["fly"]) == 2
    assert "unknown command 'fly'" in capsys.readouterr().err


def test_train_runs_the_folds_and_saves_models_with_cards(trained_run):
    output, results = trained_run.output, trained_run.results
    assert [fold["fold"] for fold in results["folds"]] == ["fold1", "fold2"]
    assert 0.0 <= results["mean"]["accuracy"] <= 1.0
    for fold in ("fold1", "fold2"):
        assert {"config.json", "model.safetensors", "preprocessor_config.json", "README.md"} <= {
            p.name for p in (output / fold).iterdir()
        }


def test_evaluate_writes_accuracy_geometry_and_heatmap(trained_run, tmp_path, capsys):
    data, output, results = trained_run.data, trained_run.output, trained_run.results
    report, heatmap = tmp_path / "eval.json", tmp_path / "geometry.png"
    argv = ["evaluate", str(output / "fold1"), "--data_dir", str(data), "--split", "train"]
    argv += ["--fold_column", "fold", "--fold", "1"]  # the model's held-out fold only
    assert main([*argv, "--output", str(report), "--heatmap", str(heatmap)]) == 0
    evaluation = json.loads(report.read_text())
    assert evaluation["num_samples"] == 12 and evaluation["class_names"] == ["no", "up", "yes"]
    assert evaluation["accuracy"] == results["folds"][0]["accuracy"]  # what training measured on fold 1
    assert 0.0 <= evaluation["accuracy"] <= 1.0
    assert len(evaluation["mean_distance"]) == 3 and set(evaluation["geometry"]) >= {
        "intra_class_cv",
        "inter_class_cv",
    }
    assert heatmap.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"accuracy {100 * evaluation['accuracy']:.2f}%" in capsys.readouterr().out


def test_evaluate_refuses_labels_the_model_does_not_know(trained_run, tmp_path):
    output = trained_run.output
    other = write_audiofolder(tmp_path / "other", ["yes", "maybe"], n_per_label=2)
    with pytest.raises(ValueError, match=r"labels \['maybe'\].*not among the model's classes"):
        main(["evaluate", str(output / "fold1"), "--data_dir", str(other), "--split", "train"])


def test_convert_beats_then_push(tmp_path, monkeypatch):
    converted = tmp_path / "beats"
    assert main(["convert-beats", str(FIXTURES / "beats_tiny_finetuned.pt"), str(converted)]) == 0
    uploaded = {}
    monkeypatch.setattr(
        HfApi, "create_repo", lambda self, repo_id, **kwargs: type("Url", (), {"repo_id": repo_id})()
    )
    monkeypatch.setattr(
        HfApi,
        "upload_folder",
        lambda self, repo_id, folder_path, **kwargs: uploaded.update(
            repo=repo_id, files=sorted(p.name for p in Path(folder_path).iterdir())
        ),
    )
    assert main(["push", str(converted), "someone/beats-tiny"]) == 0
    assert uploaded["repo"] == "someone/beats-tiny"
    assert {"config.json", "model.safetensors", "preprocessor_config.json", "README.md"} <= set(
        uploaded["files"]
    )
    shutil.rmtree(converted)
    with pytest.raises(FileNotFoundError, match="not a complete model directory"):
        (tmp_path / "empty").mkdir()
        main(["push", str(tmp_path / "empty"), "someone/empty"])
