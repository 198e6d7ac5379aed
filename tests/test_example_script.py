"""scripts/run_audio_classification.py, the Trainer-style example, end to end on a generated dataset."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

from transformers import ASTConfig, ASTFeatureExtractor, pipeline

from hf_add.models.loading import NAMED_CONFIGS, ast_from_config

from .audio_fixtures import write_audiofolder

SCRIPT = Path(__file__).parent.parent / "scripts" / "run_audio_classification.py"


def load_script():
    spec = importlib.util.spec_from_file_location("run_audio_classification", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve the script's annotations through it
    spec.loader.exec_module(module)
    return module


def test_example_script_fine_tunes_with_add_and_saves_a_pipeline_ready_model(tmp_path):
    words = ["yes", "no", "up"]
    for split in ("train", "validation"):
        write_audiofolder(tmp_path / "data" / split, words, 4, seconds=0.5, seed=len(split))
    base = tmp_path / "base"  # a "pretrained" checkpoint: a tiny AST with its feature extractor
    ast_from_config(ASTConfig(num_mel_bins=128, max_length=64, **NAMED_CONFIGS["ast-tiny"])).save_pretrained(
        base
    )
    ASTFeatureExtractor(num_mel_bins=128, max_length=64).save_pretrained(base)

    out = tmp_path / "run"
    metrics = load_script().main(
        ["--model_name_or_path", str(base), "--dataset_name", "audiofolder", "--data_dir", str(tmp_path / "data"),
         "--output_dir", str(out), "--max_steps", "2", "--per_device_train_batch_size", "6",
         "--report_to", "none", "--use_cpu", "true", "--save_strategy", "no", "--lambdas", "1", "0", "1", "0"]
    )  # fmt: skip
    assert 0.0 <= metrics["eval_accuracy"] <= 1.0 and "eval_inter_class_cv" in metrics
    config = json.loads((out / "config.json").read_text())
    assert config["id2label"] == {"0": "no", "1": "up", "2": "yes"}
    assert config["hf_add_training"]["embedding_loss"]["config"]["lambda_sigma_p"] == 0.0
    assert "ADDLoss" in (out / "README.md").read_text()
    scores = pipeline("audio-classification", model=str(out))(str(tmp_path / "data/validation/up_0.wav"))
    assert {score["label"] for score in scores} == set(words)
