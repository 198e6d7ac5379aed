"""Model card rendering and Hub upload, with the Hub faked at HfApi.create_repo / HfApi.upload_folder."""

from __future__ import annotations

import json
import os

import pytest
from huggingface_hub import HfApi, ModelCard, RepoUrl
from transformers import ASTFeatureExtractor, TrainingArguments

from hf_add import ADDLoss, ADDTrainer, FocalLoss, OrthogonalProjectionLoss
from hf_add.hub import push_model_dir
from hf_add.losses.add import ADD_CITATION
from hf_add.losses.focal import FOCAL_CITATION
from hf_add.losses.opl import OPL_CITATION
from hf_add.model_card import build_model_card, save_model_card, training_hyperparameters

from .tiny import AST_FRAMES, AST_MELS, ListDataset, random_rows, tiny_ast

RESULTS = {
    "accuracy": {"mean": 0.9125, "std": 0.0125, "values": [0.9, 0.925]},
    "geometry": {"intra_class_mean_distance": 0.3125, "inter_class_cv": {"mean": 0.125, "std": 0.01}},
    "protocol": "5-fold CV",
}


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture
def fake_hub(monkeypatch):
    """Record create_repo / upload_folder calls; upload_folder snapshots the folder's files at call time."""
    calls = {"create_repo": [], "upload_folder": []}

    def create_repo(self, repo_id, **kwargs):
        calls["create_repo"].append({"repo_id": repo_id, **kwargs})
        return RepoUrl(f"https://huggingface.co/{repo_id}")

    def upload_folder(self, *, repo_id, folder_path, ignore_patterns=None, **kwargs):
        files = {}
        for root, _, names in os.walk(folder_path):
            for name in names:
                path = os.path.join(root, name)
                with open(path, "rb") as f:
                    files[os.path.relpath(path, folder_path)] = f.read()
        calls["upload_folder"].append(
            {"repo_id": repo_id, "files": files, "ignore_patterns": ignore_patterns}
        )
        return "commit"

    monkeypatch.setattr(HfApi, "create_repo", create_repo)
    monkeypatch.setattr(HfApi, "upload_folder", upload_folder)
    return calls


def ast_config(embedding_loss, classification_loss=None):
    config = tiny_ast().config
    config.hf_add_training = {
        "embedding_loss": embedding_loss,
        "classification_loss": classification_loss or {"name": "CrossEntropy", "config": {}},
        "embedding_module": "classifier",
        "gather_embeddings": True,
    }
    return config


def test_card_has_lambda_metrics_model_index_and_citation(tmp_path):
    add = ADDLoss(lambda_mu_p=0.25)
    config = ast_config({"name": "ADDLoss", "config": add.get_config_dict()})
    args = TrainingArguments(
        str(tmp_path), learning_rate=5e-5, optim="adamw_torch", report_to=[], use_cpu=True
    )
    card = save_model_card(
        tmp_path,
        config,
        base_model="MIT/ast-finetuned-audioset-10-10-0.4593",
        dataset_name="ESC-50",
        dataset_id="ashraq/esc50",
        hyperparameters=training_hyperparameters(args, mixup_alpha=0.5),
        results=RESULTS,
    )
    loaded = ModelCard.load(tmp_path / "README.md")
    assert loaded.text == card.text
    data = loaded.data.to_dict()
    metric = data["model-index"][0]["results"][0]["metrics"][0]
    assert metric["type"] == "accuracy" and metric["value"] == pytest.approx(0.9125)
    assert "5-fold CV" in metric["name"] and "0.0125" in metric["name"]
    assert data["model-index"][0]["results"][0]["task"]["type"] == "audio-classification"
    assert data["base_model"] == "MIT/ast-finetuned-audioset-10-10-0.4593" and data["datasets"] == [
        "ashraq/esc50"
    ]
    text = loaded.text
    assert "λ_μp = 0.25" in text
    assert "91.25 ± 1.25 %" in text
    assert "| intra_class_mean_distance | 0.3125 |" in text and "| inter_class_cv | 0.1250 ± 0.0100 |" in text
    assert "| learning_rate | 5e-05 |" in text and "| betas | (0.9, 0.999) |" in text
    assert "| mixup_alpha | 0.5 |" in text
    assert 'pipeline("audio-classification"' in text
    assert ADD_CITATION in text and OPL_CITATION not in text and FOCAL_CITATION not in text
    assert "| transformers |" in text and "| torch |" in text
    assert not [name for name in os.listdir(tmp_path) if name != "README.md"]  # no temp file left


def test_card_cites_the_baseline_losses_used():
    config = ast_config(
        {"name": "OrthogonalProjectionLoss", "config": OrthogonalProjectionLoss().get_config_dict()},
        {"name": "FocalLoss", "config": FocalLoss(gamma=2.0).get_config_dict()},
    )
    card = build_model_card(config)
    assert OPL_CITATION in card.text and FOCAL_CITATION in card.text and ADD_CITATION in card.text
    assert "model-index" not in card.data.to_dict()  # no results, no claimed metric
    assert "No evaluation results" in card.text


def test_trainer_push_to_hub_ships_model_feature_extractor_and_card(tmp_path, fake_hub):
    args = TrainingArguments(
        output_dir=str(tmp_path / "out"),
        push_to_hub=True,
        hub_model_id="user/test",
        per_device_eval_batch_size=8,
        report_to=[],
        use_cpu=True,
        save_strategy="no",
        disable_tqdm=True,
    )
    trainer = ADDTrainer(
        model=tiny_ast(),
        args=args,
        eval_dataset=ListDataset(random_rows(16, (AST_FRAMES, AST_MELS))),
        processing_class=ASTFeatureExtractor(num_mel_bins=AST_MELS, max_length=AST_FRAMES),
        embedding_loss=ADDLoss(lambda_sigma_n=0.5),
    )
    metrics = trainer.evaluate()
    trainer.push_to_hub(dataset_tags="ashraq/esc50", dataset="ESC-50")

    assert [call["repo_id"] for call in fake_hub["create_repo"]] == ["user/test"]
    (upload,) = fake_hub["upload_folder"]
    files = upload["files"]
    assert upload["repo_id"] == "user/test"
    assert {"config.json", "model.safetensors", "preprocessor_config.json", "README.md"} <= set(files)
    config = json.loads(files["config.json"])
    assert config["hf_add_training"]["embedding_loss"] == {
        "name": "ADDLoss",
        "config": ADDLoss(lambda_sigma_n=0.5).get_config_dict(),
        "citation": ADD_CITATION,
    }
    readme = files["README.md"].decode()
    assert "λ_σn = 0.5" in readme
    card = ModelCard(readme)
    result = card.data.to_dict()["model-index"][0]["results"][0]
    assert result["dataset"] == {"name": "ESC-50", "type": "ashraq/esc50"}
    assert result["metrics"][0]["value"] == pytest.approx(metrics["eval_accuracy"])
    assert f"{metrics['eval_intra_class_mean_distance']:.4f}" in readme


def test_push_model_dir_renders_missing_card_and_uploads(tmp_path, fake_hub):
    model = tiny_ast()
    model.config.hf_add_training = ast_config(
        {"name": "ADDLoss", "config": ADDLoss().get_config_dict()}
    ).hf_add_training
    model.save_pretrained(tmp_path)
    with pytest.raises(FileNotFoundError, match="preprocessor_config.json"):
        push_model_dir(tmp_path, "user/test")
    assert not fake_hub["create_repo"]  # nothing created for an incomplete directory

    ASTFeatureExtractor(num_mel_bins=AST_MELS, max_length=AST_FRAMES).save_pretrained(tmp_path)
    assert push_model_dir(tmp_path, "user/test", private=True, results=RESULTS) == "commit"
    assert fake_hub["create_repo"][0]["repo_id"] == "user/test" and fake_hub["create_repo"][0]["private"]
    files = fake_hub["upload_folder"][0]["files"]
    assert {"config.json", "model.safetensors", "preprocessor_config.json", "README.md"} <= set(files)
    readme = files["README.md"].decode()
    assert 'model="user/test"' in readme and "91.25 ± 1.25 %" in readme and ADD_CITATION in readme


def test_results_given_as_values_only_get_mean_and_std():
    config = ast_config(None)
    card = build_model_card(config, results={"accuracy": {"values": [0.8, 0.9]}, "protocol": "2 seeds"})
    metric = card.data.to_dict()["model-index"][0]["results"][0]["metrics"][0]
    assert metric["value"] == pytest.approx(0.85) and "std 0.0707" in metric["name"]
    assert "85.00 ± 7.07 % (n = 2)" in card.text and "CrossEntropy alone" in card.text


def test_a_local_base_model_is_not_linked_to_the_hub(tmp_path):
    config = ast_config(None)
    card = build_model_card(config, base_model=str(tmp_path))  # e.g. finetune from a local checkpoint
    assert "huggingface.co//" not in card.text and str(tmp_path) not in card.text
    assert "base_model" not in card.data.to_dict()
    hub = build_model_card(config, base_model="MIT/ast-finetuned-audioset-10-10-0.4593")
    assert "(https://huggingface.co/MIT/ast-finetuned-audioset-10-10-0.4593)" in hub.text
