"""Multi-label tagging (an extension of the paper, DESIGN §7): config.problem_type decides; BCE with the
soft ADD form on multi-hot rows; mAP and F1 at evaluation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from hf_add import ADDLoss, ADDTrainer

from .tiny import ListDataset, batch_of, cpu_training_args, tiny_mlp

MULTI_LABEL = "multi_label_classification"
NUM_CLASSES, DIM = 4, 8


def multi_label_model(seed=0):
    model = tiny_mlp(seed)
    model.config.problem_type = MULTI_LABEL
    return model


def mixed_sources(n, seed=0, noise=1.5):
    """Clips that mix one or two of four sources: the input is the sum of their prototypes plus noise."""
    generator = torch.Generator().manual_seed(seed)
    prototypes = torch.randn(NUM_CLASSES, DIM, generator=torch.Generator().manual_seed(123)) * 2
    labels = torch.zeros(n, NUM_CLASSES)
    first = torch.randint(0, NUM_CLASSES, (n,), generator=generator)
    second = torch.randint(0, NUM_CLASSES, (n,), generator=generator)
    labels[torch.arange(n), first] = 1.0
    mixed = torch.rand(n, generator=generator) < 0.5
    labels[torch.arange(n)[mixed], second[mixed]] = 1.0
    inputs = labels @ prototypes + noise * torch.randn(n, DIM, generator=generator)
    return [{"input_values": inputs[i], "labels": labels[i]} for i in range(n)]


def brute_force_map(targets: np.ndarray, scores: np.ndarray) -> float:
    """Mean over classes of AP = mean over positives of the precision at their rank (distinct scores)."""
    per_class = []
    for c in range(targets.shape[1]):
        ranked = targets[np.argsort(-scores[:, c]), c]
        hits = np.flatnonzero(ranked)
        if len(hits):
            per_class.append(np.mean([(k + 1) / (rank + 1) for k, rank in enumerate(hits)]))
    return float(np.mean(per_class))


def test_loss_is_the_models_own_bce_plus_add_on_multi_hot_rows(tmp_path):
    model = multi_label_model()
    batch = batch_of(mixed_sources(12))
    assert (batch["labels"].sum(1) == 2).any()  # rows with two 1s: not probabilities
    trainer = ADDTrainer(model=model, args=cpu_training_args(tmp_path), embedding_loss=ADDLoss())
    embeddings = model.encoder(batch["input_values"])
    own_bce = F.binary_cross_entropy_with_logits(model.classifier(embeddings), batch["labels"])
    expected = own_bce + ADDLoss()(embeddings, batch["labels"])
    torch.testing.assert_close(trainer.compute_loss(model, dict(batch)), expected)
    assert trainer.training_configuration()["classification_loss"]["name"] == "SoftTargetBCEWithLogits"


def test_a_softmax_loss_on_a_multi_label_model_is_refused(tmp_path):
    with pytest.raises(ValueError, match="multi_label_classification.*use 'bce'"):
        ADDTrainer(model=multi_label_model(), args=cpu_training_args(tmp_path), classification_loss="ce")


def test_labels_that_do_not_fit_the_problem_type_are_named(tmp_path):
    multi_hot = batch_of(mixed_sources(8))
    single = tiny_mlp()  # problem_type unset: 2-D rows must be probabilities
    trainer = ADDTrainer(model=single, args=cpu_training_args(tmp_path))
    with pytest.raises(ValueError, match="problem_type = 'multi_label_classification'"):
        trainer.compute_loss(single, dict(multi_hot))
    model = multi_label_model()
    trainer = ADDTrainer(model=model, args=cpu_training_args(tmp_path))
    with pytest.raises(ValueError, match="multi-hot float rows"):
        trainer.compute_loss(model, {**multi_hot, "labels": multi_hot["labels"].argmax(1)})


@pytest.mark.parametrize("embedding_loss", [None, ADDLoss()], ids=["bce", "bce+add"])
def test_trains_on_mixed_sources_to_a_map_well_above_chance(tmp_path, embedding_loss):
    train, test = mixed_sources(256, seed=0), mixed_sources(64, seed=1)
    trainer = ADDTrainer(
        model=multi_label_model(),
        args=cpu_training_args(
            tmp_path, num_train_epochs=40, per_device_train_batch_size=32, logging_steps=20
        ),
        train_dataset=ListDataset(train),
        eval_dataset=ListDataset(test),
        embedding_loss=embedding_loss,
    )
    trainer.train()
    metrics = trainer.evaluate()
    assert "eval_accuracy" not in metrics and "eval_intra_class_cv" not in metrics
    targets = np.stack([row["labels"].numpy() for row in test])
    logits = trainer.predict(ListDataset(test)).predictions
    assert metrics["eval_map"] == pytest.approx(brute_force_map(targets, logits), abs=1e-9)
    chance = brute_force_map(targets, np.random.default_rng(0).random(targets.shape))
    assert chance < 0.6 < 0.9 < metrics["eval_map"]
    predicted = logits > 0
    true_positives = (predicted & (targets == 1)).sum()
    micro = 2 * true_positives / (predicted.sum() + targets.sum())
    assert metrics["eval_micro_f1"] == pytest.approx(micro)
    assert metrics["eval_micro_f1"] > 0.75
