"""ADDTrainer where Trainer builds, searches, smooths, accumulates and saves: model_init and
hyperparameter_search, label_smoothing_factor, several trainers on one model, gradient accumulation, and
the loss configuration saved with the model or beside a PEFT adapter."""

from __future__ import annotations

import copy
import json
import logging

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from transformers import Trainer

from hf_add import ADDLoss, ADDTrainer, FocalLoss, OrthogonalProjectionLoss
from hf_add.losses.classification import CrossEntropy, SoftTargetBCEWithLogits
from hf_add.model_card import build_model_card

from .tiny import (
    AST_FRAMES,
    AST_MELS,
    NUM_LABELS,
    ListDataset,
    batch_of,
    cpu_training_args,
    random_rows,
    tiny_ast,
)


def ast_rows(n, seed=0):
    return random_rows(n, (AST_FRAMES, AST_MELS), seed=seed)


def hooks_on_head(model) -> int:
    return len(model.classifier._forward_pre_hooks)


# ---- model_init and hyperparameter search ----


def test_model_init_moves_the_capture_to_the_model_that_trains(tmp_path):
    built = []

    def model_init():
        built.append(tiny_ast(seed=len(built)))
        return built[-1]

    rows = ast_rows(16)
    trainer = ADDTrainer(
        model_init=model_init,
        args=cpu_training_args(tmp_path, max_steps=2),
        train_dataset=ListDataset(rows),
        embedding_loss=ADDLoss(),
    )
    trainer.train()  # failed before: "the model's forward did not call 'classifier'"
    assert len(built) == 2 and trainer.model is built[1]
    assert hooks_on_head(built[0]) == 0 and hooks_on_head(built[1]) == 1
    # The embedding ADD sees is that of the trained model: the loss equals a hand computation on it.
    model = trainer.model.eval()
    batch = batch_of(rows[:8])
    pooled = model.audio_spectrogram_transformer(batch["input_values"]).pooler_output
    expected = F.cross_entropy(model.classifier(pooled), batch["labels"]) + ADDLoss()(pooled, batch["labels"])
    torch.testing.assert_close(trainer.compute_loss(model, dict(batch)), expected)


def test_hyperparameter_search_over_the_learning_rate_and_the_loss_weights(tmp_path):
    """The README example: optuna searches TrainingArguments and ADD's λ; each trial trains its own λ."""
    pytest.importorskip("optuna")
    rows = ast_rows(16)
    trials = []

    def hp_space(trial):
        return {"learning_rate": trial.suggest_float("learning_rate", 1e-3, 1e-1, log=True)}

    def embedding_loss_init(trial):
        if trial is None:  # the first model, built when the trainer is
            return ADDLoss()
        loss = ADDLoss(lambda_mu_p=trial.suggest_float("lambda_mu_p", 0.25, 2.0))
        trials.append((trial.number, loss.lambda_mu_p))
        return loss

    trainer = ADDTrainer(
        model_init=lambda: tiny_ast(),
        embedding_loss_init=embedding_loss_init,
        args=cpu_training_args(tmp_path, max_steps=2, save_strategy="steps", save_steps=2),
        train_dataset=ListDataset(rows),
        eval_dataset=ListDataset(rows[:8]),
    )
    best = trainer.hyperparameter_search(
        hp_space=hp_space, n_trials=2, direction="minimize", backend="optuna"
    )
    assert [number for number, _ in trials] == [0, 1]
    assert best.hyperparameters["lambda_mu_p"] in [value for _, value in trials]
    assert trainer.embedding_loss.lambda_mu_p == trials[-1][1]  # the loss of the last trial trained
    for number, value in trials:  # each trial's checkpoint records the λ it trained with
        saved = json.loads((tmp_path / f"run-{number}" / "checkpoint-2" / "config.json").read_text())
        assert saved["hf_add_training"]["embedding_loss"]["config"]["lambda_mu_p"] == value
    # The objective is Trainer's default (the evaluation loss), not a sum with ADDTrainer's own metrics.
    assert trainer.objective == trainer.state.log_history[-1]["eval_loss"]


def test_embedding_loss_and_embedding_loss_init_are_exclusive(tmp_path):
    with pytest.raises(ValueError, match="embedding_loss or embedding_loss_init"):
        ADDTrainer(
            model=tiny_ast(),
            args=cpu_training_args(tmp_path),
            embedding_loss=ADDLoss(),
            embedding_loss_init=lambda trial: ADDLoss(),
        )


# ---- label smoothing ----


@pytest.mark.parametrize("labels_kind", ["ids", "mixup"])
def test_label_smoothing_factor_smooths_the_classification_loss_as_trainer_does(tmp_path, labels_kind):
    model = tiny_ast()
    rows = ast_rows(8)
    batch = batch_of(rows)
    if labels_kind == "mixup":
        one_hot = F.one_hot(batch["labels"], NUM_LABELS).float()
        batch["labels"] = 0.7 * one_hot + 0.3 * one_hot.roll(1, dims=0)
    trainer = ADDTrainer(model=model, args=cpu_training_args(tmp_path, label_smoothing_factor=0.1))
    logits = model(batch["input_values"]).logits
    expected = F.cross_entropy(logits, batch["labels"], label_smoothing=0.1)
    assert not torch.allclose(expected, F.cross_entropy(logits, batch["labels"]))
    torch.testing.assert_close(trainer.compute_loss(model, dict(batch)), expected)
    if labels_kind == "ids":  # Trainer's own LabelSmoother gives the same number
        plain = Trainer(model=model, args=cpu_training_args(tmp_path, label_smoothing_factor=0.1))
        torch.testing.assert_close(plain.compute_loss(model, dict(batch)), expected)
    assert trainer.training_configuration()["classification_loss"]["config"] == {"label_smoothing": 0.1}


def test_label_smoothing_of_bce_and_focal_by_hand():
    logits = torch.randn(6, 4, generator=torch.Generator().manual_seed(0))
    labels = torch.tensor([0, 1, 2, 3, 0, 1])
    one_hot = F.one_hot(labels, 4).float()
    eps = 0.2
    bce = F.binary_cross_entropy_with_logits(logits, one_hot * (1 - eps) + eps / 2)
    torch.testing.assert_close(SoftTargetBCEWithLogits(label_smoothing=eps)(logits, labels), bce)
    # Focal with γ = 0 is cross-entropy, smoothing included.
    torch.testing.assert_close(
        FocalLoss(gamma=0.0, label_smoothing=eps)(logits, labels),
        F.cross_entropy(logits, labels, label_smoothing=eps),
    )
    torch.testing.assert_close(
        CrossEntropy(label_smoothing=eps)(logits, labels),
        F.cross_entropy(logits, labels, label_smoothing=eps),
    )


def test_label_smoothing_that_cannot_be_applied_is_an_error(tmp_path):
    class MyLoss(nn.Module):
        def forward(self, logits, labels):
            return F.cross_entropy(logits, labels)

    args = cpu_training_args(tmp_path, label_smoothing_factor=0.1)
    with pytest.raises(ValueError, match="cannot be applied to MyLoss"):
        ADDTrainer(model=tiny_ast(), args=args, classification_loss=MyLoss())
    with pytest.raises(ValueError, match="disagree"):
        ADDTrainer(model=tiny_ast(), args=args, classification_loss=FocalLoss(label_smoothing=0.3))
    trainer = ADDTrainer(model=tiny_ast(), args=args, classification_loss=FocalLoss(gamma=1.0))
    assert trainer.classification_loss.label_smoothing == 0.1


# ---- several trainers on one model ----


def test_a_second_trainer_on_the_model_shares_its_one_capture_and_the_saver_describes_the_model(tmp_path):
    model = tiny_ast()
    rows = ast_rows(16)
    trained = ADDTrainer(
        model=model,
        args=cpu_training_args(tmp_path / "a", max_steps=1),
        train_dataset=ListDataset(rows),
        embedding_loss=ADDLoss(lambda_mu_p=0.5),
    )
    other = ADDTrainer(
        model=model,
        args=cpu_training_args(tmp_path / "b"),
        eval_dataset=ListDataset(rows),
        embedding_loss=OrthogonalProjectionLoss(),
    )
    assert hooks_on_head(model) == 1
    trained.train()
    assert other.evaluate()["eval_accuracy"] >= 0  # the shared capture serves both
    trained.save_model(str(tmp_path / "model"))
    saved = json.loads((tmp_path / "model" / "config.json").read_text())["hf_add_training"]
    assert saved["embedding_loss"]["name"] == "ADDLoss"
    assert saved["embedding_loss"]["config"]["lambda_mu_p"] == 0.5


# ---- gradient accumulation ----


def test_gradient_accumulation_says_once_that_add_sees_micro_batches(tmp_path, caplog):
    trainer = ADDTrainer(
        model=tiny_ast(),
        args=cpu_training_args(
            tmp_path, per_device_train_batch_size=4, gradient_accumulation_steps=2, max_steps=3
        ),
        train_dataset=ListDataset(ast_rows(24)),
        embedding_loss=ADDLoss(),
    )
    with caplog.at_level(logging.WARNING, logger="hf_add.trainer"):
        trainer.train()
    messages = [r.getMessage() for r in caplog.records if "micro-batch" in r.getMessage()]
    assert len(messages) == 1
    assert "micro-batch of 4 samples, not from the 8 samples of an update" in messages[0]
    first_window = next(entry for entry in trainer.state.log_history if "positive_pairs" in entry)
    assert f"so far: {first_window['positive_pairs']:.2f}" in messages[0]


# ---- PEFT ----


def test_peft_adapter_carries_the_loss_configuration_and_card(tmp_path):
    peft = pytest.importorskip("peft")
    model = peft.get_peft_model(
        tiny_ast(),
        peft.LoraConfig(r=4, target_modules=["q_proj", "v_proj"], modules_to_save=["classifier"]),
    )
    loss = ADDLoss(lambda_sigma_n=2.0)
    trainer = ADDTrainer(
        model=model,
        args=cpu_training_args(tmp_path / "out", max_steps=2),
        train_dataset=ListDataset(ast_rows(16)),
        embedding_loss=loss,
    )
    trainer.train()
    trainer.save_model(str(tmp_path / "adapter"))
    trainer.create_model_card()
    assert (tmp_path / "adapter" / "adapter_config.json").is_file()
    saved = json.loads((tmp_path / "adapter" / "hf_add_training.json").read_text())
    assert saved["embedding_loss"]["config"] == loss.get_config_dict()
    card = (tmp_path / "out" / "README.md").read_text()
    assert "ADDLoss" in card and "λ_σn" in card
    assert "λ_σn" in str(build_model_card(tmp_path / "adapter"))  # a card made from the adapter alone

    # Read back on resume: a trainer built with another λ takes the adapter's.
    resumed = ADDTrainer(
        model=copy.deepcopy(model), args=cpu_training_args(tmp_path / "again"), embedding_loss=ADDLoss()
    )
    resumed._restore_configuration(str(tmp_path / "adapter"))
    assert resumed.embedding_loss.get_config_dict() == loss.get_config_dict()
