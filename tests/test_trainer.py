"""ADDTrainer against hand-written computations of the same loss."""

from __future__ import annotations

import copy
import json
import logging

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import SequentialSampler
from transformers import TrainingArguments

from hf_add import ADDLoss, ADDTrainer, EmbeddingLoss, FocalLoss, OrthogonalProjectionLoss
from hf_add.losses import build_loss

from .tiny import (
    AST_FRAMES,
    AST_MELS,
    NUM_LABELS,
    ListDataset,
    batch_of,
    cpu_training_args,
    random_rows,
    tiny_ast,
    tiny_mlp,
    torchrun_on_cpu,
)


class SequentialADDTrainer(ADDTrainer):
    """Feeds batches in dataset order, so a test knows which rows form each step."""

    def _get_train_sampler(self, train_dataset=None):
        return SequentialSampler(train_dataset or self.train_dataset)


def make_args(tmp_path, **overrides) -> TrainingArguments:
    return cpu_training_args(tmp_path, **overrides)


def ast_rows(n, seed=0, soft=False):
    return random_rows(n, (AST_FRAMES, AST_MELS), seed=seed, soft=soft)


def hand_loss(model, batch, embedding_loss=None):
    """CE on the logits + embedding loss on the AST pooler output, written out by hand."""
    pooled = model.audio_spectrogram_transformer(batch["input_values"]).pooler_output
    logits = model.classifier(pooled)
    labels = batch["labels"]
    loss = F.cross_entropy(logits, labels)
    if embedding_loss is not None:
        loss = loss + embedding_loss(pooled, labels)
    return loss


@pytest.mark.parametrize("soft", [False, True], ids=["class-ids", "mixup-probabilities"])
def test_one_step_equals_hand_written_loss_and_gradients(tmp_path, soft):
    model = tiny_ast()
    reference = copy.deepcopy(model)
    batch = batch_of(ast_rows(8, soft=soft))
    trainer = ADDTrainer(model=model, args=make_args(tmp_path), embedding_loss=ADDLoss())
    trainer.current_gradient_accumulation_steps = 1  # set by the training loop

    loss = trainer.training_step(trainer.model, dict(batch))
    expected = hand_loss(reference, batch, ADDLoss())
    expected.backward()

    torch.testing.assert_close(loss, expected.detach(), rtol=1e-6, atol=1e-7)
    for (name, parameter), (_, ref) in zip(
        model.named_parameters(), reference.named_parameters(), strict=True
    ):
        torch.testing.assert_close(parameter.grad, ref.grad, rtol=1e-5, atol=1e-7, msg=name)


def test_classification_loss_options(tmp_path):
    model = tiny_ast()
    batch = batch_of(ast_rows(8))
    logits = model(batch["input_values"]).logits
    for spec, expected in [
        (FocalLoss(gamma=2.0), FocalLoss(gamma=2.0)(logits, batch["labels"])),
        ("bce", F.binary_cross_entropy_with_logits(logits, F.one_hot(batch["labels"], NUM_LABELS).float())),
    ]:
        trainer = ADDTrainer(model=model, args=make_args(tmp_path), classification_loss=spec)
        torch.testing.assert_close(trainer.compute_loss(model, dict(batch)), expected)
    with pytest.raises(ValueError, match="classification_loss must be one of"):
        ADDTrainer(model=model, args=make_args(tmp_path), classification_loss="hinge")


@pytest.mark.parametrize(
    "make_model,shape", [(tiny_ast, (AST_FRAMES, AST_MELS)), (tiny_mlp, (8,))], ids=["ast", "no-kwargs"]
)
def test_gradient_accumulation_averages_micro_batch_gradients(tmp_path, make_model, shape):
    rows = random_rows(8, shape)
    model = make_model()
    reference = copy.deepcopy(model)
    args = make_args(tmp_path, per_device_train_batch_size=4, gradient_accumulation_steps=2, max_steps=1)
    SequentialADDTrainer(
        model=model, args=args, train_dataset=ListDataset(rows), embedding_loss=ADDLoss()
    ).train()

    trainer = ADDTrainer(model=reference, args=make_args(tmp_path / "ref"), embedding_loss=ADDLoss())
    gradients = []
    for micro in (rows[:4], rows[4:]):
        reference.zero_grad()
        trainer.compute_loss(reference, batch_of(micro)).backward()
        gradients.append({n: p.grad.clone() for n, p in reference.named_parameters()})
    with torch.no_grad():
        for name, parameter in reference.named_parameters():
            expected = parameter - 0.1 * (gradients[0][name] + gradients[1][name]) / 2
            torch.testing.assert_close(dict(model.named_parameters())[name], expected, rtol=1e-5, atol=1e-6)


def test_logs_components_and_evaluation_metrics(tmp_path):
    rows = ast_rows(16)
    seen = {}

    def compute_metrics(prediction):
        seen["predictions"] = prediction.predictions
        return {"custom": 1.0}

    trainer = ADDTrainer(
        model=tiny_ast(),
        args=make_args(tmp_path, max_steps=2, logging_steps=2, learning_rate=0.01),
        train_dataset=ListDataset(rows),
        eval_dataset=ListDataset(rows),
        embedding_loss=ADDLoss(),
        compute_metrics=compute_metrics,
    )
    trainer.train()
    train_log = next(entry for entry in trainer.state.log_history if "loss" in entry)
    for key in ("classification_loss", "embedding_loss", "mu_p", "sigma_p", "mu_n", "sigma_n"):
        assert np.isfinite(train_log[key]), key
    # the logged loss is the sum of the logged components, averaged over the same steps
    assert train_log["loss"] == pytest.approx(
        train_log["classification_loss"] + train_log["embedding_loss"], rel=1e-5
    )

    metrics = trainer.evaluate()
    assert seen["predictions"].shape == (16, NUM_LABELS)  # logits only
    assert metrics["eval_custom"] == 1.0
    for key in (
        "eval_accuracy",
        "eval_mu_p",
        "eval_classification_loss",
        "eval_intra_class_cv",
        "eval_inter_class_cv",
    ):
        assert np.isfinite(metrics[key]), key
    predictions = trainer.predict(ListDataset(rows)).predictions.argmax(-1)
    labels = np.array([row["labels"].item() for row in rows])
    assert metrics["eval_accuracy"] == pytest.approx((predictions == labels).mean())


def test_soft_labels_log_the_soft_statistics(tmp_path):
    trainer = ADDTrainer(
        model=tiny_ast(),
        args=make_args(tmp_path, max_steps=1),
        train_dataset=ListDataset(ast_rows(8, soft=True)),
        embedding_loss=ADDLoss(),
    )
    trainer.train()
    log = next(entry for entry in trainer.state.log_history if "loss" in entry)
    assert {"mu", "sigma_p"} <= log.keys() and "mu_n" not in log


def test_opl_as_embedding_loss(tmp_path):
    model = tiny_ast()
    batch = batch_of(ast_rows(8))
    trainer = ADDTrainer(
        model=model, args=make_args(tmp_path), embedding_loss=OrthogonalProjectionLoss(gamma=2.0)
    )
    pooled = model.audio_spectrogram_transformer(batch["input_values"]).pooler_output
    expected = F.cross_entropy(model.classifier(pooled), batch["labels"]) + OrthogonalProjectionLoss(
        gamma=2.0
    )(pooled, batch["labels"])
    torch.testing.assert_close(trainer.compute_loss(model, dict(batch)), expected)


def test_unknown_embedding_module_names_the_candidates(tmp_path):
    with pytest.raises(ValueError, match=r"no module named 'head'.*classifier"):
        ADDTrainer(
            model=tiny_ast(), args=make_args(tmp_path), embedding_loss=ADDLoss(), embedding_module="head"
        )


def test_configuration_saved_with_model_and_restored_on_resume(tmp_path):
    rows = ast_rows(24)
    loss = ADDLoss(lambda_mu_p=0.5, lambda_sigma_n=2.0)

    def run(output_dir, max_steps, embedding_loss, resume=None):
        args = make_args(
            output_dir, max_steps=max_steps, save_strategy="steps", save_steps=3, learning_rate=0.05
        )
        args.optim = "adamw_torch"
        trainer = ADDTrainer(
            model=tiny_ast(), args=args, train_dataset=ListDataset(rows), embedding_loss=embedding_loss
        )
        trainer.train(resume_from_checkpoint=resume)
        return trainer

    full = run(tmp_path / "full", 6, loss)
    saved = json.loads((tmp_path / "full" / "checkpoint-3" / "config.json").read_text())["hf_add_training"]
    assert saved["embedding_loss"] == {
        "name": "ADDLoss",
        "config": loss.get_config_dict(),
        "citation": ADDLoss.citation,
    }

    run(tmp_path / "part", 3, loss)
    resumed = run(tmp_path / "part", 6, ADDLoss(), resume=str(tmp_path / "part" / "checkpoint-3"))
    assert resumed.embedding_loss.get_config_dict() == loss.get_config_dict()
    for (name, a), (_, b) in zip(
        full.model.named_parameters(), resumed.model.named_parameters(), strict=True
    ):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7, msg=name)


@pytest.mark.parametrize("bf16", [False, True], ids=["fp32", "bf16-autocast"])
def test_trains_20_steps_with_decreasing_loss(tmp_path, bf16):
    rows = ast_rows(16)
    trainer = ADDTrainer(
        model=tiny_ast(),
        args=make_args(tmp_path, max_steps=20, learning_rate=3e-3, optim="adamw_torch", bf16=bf16),
        train_dataset=ListDataset(rows),
        embedding_loss=ADDLoss(),
    )
    trainer.train()
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    assert len(losses) == 20 and all(np.isfinite(losses))
    assert np.mean(losses[-5:]) < np.mean(losses[:5])


@pytest.mark.parametrize("sizes", [(4, 4), (4, 3)], ids=["equal", "unequal"])
def test_two_processes_equal_one_process_on_the_concatenated_batch(tmp_path, sizes):
    output = tmp_path / "ddp.pt"
    torchrun_on_cpu("tests.workers.ddp_worker", str(output), ",".join(map(str, sizes)))
    distributed = torch.load(output)

    rows = ast_rows(sum(sizes))
    model = tiny_ast()
    args = make_args(tmp_path / "single", per_device_train_batch_size=sum(sizes), max_steps=1)
    trainer = SequentialADDTrainer(
        model=model, args=args, train_dataset=ListDataset(rows), embedding_loss=ADDLoss()
    )
    trainer.train()
    single = dict(model.named_parameters())
    if sizes[0] == sizes[1]:  # the logged loss (mean over ranks) is the global-batch loss, not CE + W·ADD
        (single_loss,) = [logs["loss"] for logs in trainer.state.log_history if "loss" in logs]
        assert distributed["logged_loss"] == pytest.approx(single_loss, rel=1e-5)
    for name, parameter in distributed["global"].items():
        torch.testing.assert_close(parameter, single[name].detach(), rtol=1e-6, atol=1e-6, msg=name)
    # per-rank ADD is a different objective: the comparison above can fail
    assert any(
        not torch.allclose(parameter, single[name], rtol=1e-6, atol=1e-6)
        for name, parameter in distributed["per_rank"].items()
    )


class MeanCosineLoss(EmbeddingLoss):
    """A user's own embedding loss: the mean cosine of different-class pairs (spread the classes)."""

    citation = "@misc{user2026meancosine, title = {Mean cosine}, author = {A. User}, year = {2026}}"

    def __init__(self, weight: float = 1.0):
        super().__init__()
        self.weight = self.check_weight("weight", weight)

    def statistics(self, embeddings, labels, num_classes=None):
        unit, _ = self.prepare(embeddings, labels, num_classes)
        negatives = (labels.unsqueeze(0) != labels.unsqueeze(1)).float()
        return {"negative_cosine": ((unit @ unit.T) * negatives).sum() / negatives.sum().clamp_min(1.0)}

    def loss_from_statistics(self, stats):
        return self.weight * stats["negative_cosine"]

    def get_config_dict(self):
        return {"weight": self.weight}


def test_a_user_written_embedding_loss_trains_is_logged_saved_and_cited(tmp_path):
    model, rows = tiny_ast(), ast_rows(16)
    loss = MeanCosineLoss(weight=0.5)
    trainer = SequentialADDTrainer(
        model=model,
        args=make_args(tmp_path, max_steps=2),
        train_dataset=ListDataset(rows),
        embedding_loss=loss,
    )
    batch = batch_of(rows[:8])
    pooled = model.audio_spectrogram_transformer(batch["input_values"]).pooler_output
    unit = F.normalize(pooled, dim=1)
    different = batch["labels"].unsqueeze(0) != batch["labels"].unsqueeze(1)
    expected = (
        F.cross_entropy(model.classifier(pooled), batch["labels"]) + 0.5 * (unit @ unit.T)[different].mean()
    )
    torch.testing.assert_close(trainer.compute_loss(model, dict(batch)), expected)

    trainer.train()
    log = next(entry for entry in trainer.state.log_history if "loss" in entry)
    assert np.isfinite(log["negative_cosine"]) and "embedding_loss" in log
    trainer.save_model()
    trainer.create_model_card()
    card = (tmp_path / "README.md").read_text()
    assert "MeanCosineLoss" in card and loss.citation in card and "mean-cosine-loss" in card
    saved = json.loads((tmp_path / "config.json").read_text())["hf_add_training"]["embedding_loss"]
    assert build_loss(saved).get_config_dict() == {"weight": 0.5}  # rebuilt by name on resume
    with pytest.raises(ValueError, match="must be an hf_add.EmbeddingLoss"):
        ADDTrainer(model=tiny_ast(), args=make_args(tmp_path), embedding_loss=torch.nn.MSELoss())


def test_a_nonfinite_loss_stops_training_before_anything_is_saved(tmp_path):
    rows = ast_rows(16)
    rows[9]["input_values"] = torch.full_like(rows[9]["input_values"], float("nan"))  # in the 2nd batch
    args = make_args(tmp_path, max_steps=4, logging_steps=3, save_strategy="steps", save_steps=1)
    trainer = SequentialADDTrainer(
        model=tiny_ast(), args=args, train_dataset=ListDataset(rows), embedding_loss=ADDLoss(validate=False)
    )
    with pytest.raises(
        RuntimeError, match=r"not finite at step 2 \(.*classification_loss.*\).*learning rate"
    ):
        trainer.train()
    assert sorted(p.name for p in tmp_path.glob("checkpoint-*")) == ["checkpoint-1"]  # saved before step 2


def test_no_positive_pair_is_warned_once(tmp_path, caplog):
    trainer = ADDTrainer(
        model=tiny_ast(),
        args=make_args(tmp_path, max_steps=4, per_device_train_batch_size=1),
        train_dataset=ListDataset(ast_rows(8)),
        embedding_loss=ADDLoss(),
    )
    with caplog.at_level(logging.WARNING, logger="hf_add.trainer"):
        trainer.train()
    warnings = [r.message for r in caplog.records if "positive-pair terms" in r.message]
    assert len(warnings) == 1 and "larger batch" in warnings[0]
    assert all(entry["positive_pairs"] == 0 for entry in trainer.state.log_history if "loss" in entry)


def test_positive_pairs_are_logged_without_an_embedding_loss_and_not_warned_about(tmp_path, caplog):
    rows = ast_rows(8)
    for row, label in zip(rows, [0, 0, 0, 1, 1, 2, 2, 2], strict=True):
        row["labels"] = torch.tensor(label)
    trainer = SequentialADDTrainer(
        model=tiny_ast(),
        args=make_args(tmp_path, max_steps=2, logging_steps=1, per_device_train_batch_size=4),
        train_dataset=ListDataset(rows),
    )
    with caplog.at_level(logging.WARNING, logger="hf_add.trainer"):
        trainer.train()
    # batch 1 = {0,0,0,1}: 3·2 ordered pairs; batch 2 = {1,2,2,2}: 3·2.  With batch size 1 below: none.
    assert [entry["positive_pairs"] for entry in trainer.state.log_history if "loss" in entry] == [6.0, 6.0]
    single = SequentialADDTrainer(
        model=tiny_ast(),
        args=make_args(tmp_path / "single", max_steps=2, per_device_train_batch_size=1),
        train_dataset=ListDataset(rows),
    )
    with caplog.at_level(logging.WARNING, logger="hf_add.trainer"):
        single.train()
    assert not [r for r in caplog.records if "positive-pair terms" in r.message]
