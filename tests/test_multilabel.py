"""Multi-label tagging (an extension of the paper, DESIGN §7): config.problem_type decides; BCE with the
soft ADD form on multi-hot rows; mAP and F1 at evaluation."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import soundfile as sf
import torch
import torch.nn.functional as F
from transformers import AutoFeatureExtractor, AutoModelForAudioClassification, pipeline

from hf_add import ADDLoss, ADDTrainer
from hf_add.cli import main

from .audio_fixtures import tone
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


# ---- hf-add train / evaluate on a folder of clips that mix two sources ----

SOURCES = ["bell", "horn", "siren", "whistle"]


def write_mixed_folder(root, clips=160, seed=0):
    """Clips of one or two of four tones (the label text 'bell;siren'), split train / validation / test."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True)
    rows = []
    for i in range(clips):
        chosen = sorted(set(rng.choice(len(SOURCES), size=rng.integers(1, 3))))
        wave = sum(tone(k, 16000, 0.5, 1, rng) for k in chosen) / len(chosen)
        sf.write(root / f"clip_{i}.wav", wave, 16000)
        partition = ["train", "train", "validation", "test"][i % 4]
        rows.append(
            {
                "file_name": f"clip_{i}.wav",
                "label": ";".join(SOURCES[k] for k in chosen),
                "partition": partition,
            }
        )
    with open(root / "metadata.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["file_name", "label", "partition"])
        writer.writeheader()
        writer.writerows(rows)
    return root


@pytest.fixture(scope="module")
def multi_label_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("multi")
    data = write_mixed_folder(root / "data")
    output = root / "run"
    argv = [
        "train",
        "--model_name_or_path",
        "ast-tiny",
        "--ast_max_length",
        "50",
        "--dataset_name",
        "audiofolder",
    ]
    argv += ["--data_dir", str(data), "--split_column", "partition", "--label_separator", ";"]
    argv += [
        "--validation_split",
        "validation",
        "--test_split",
        "test",
        "--loss",
        "add",
        "--learning_rate",
        "3e-3",
    ]
    argv += ["--num_train_epochs", "20", "--per_device_train_batch_size", "16", "--output_dir", str(output)]
    argv += ["--report_to", "none", "--save_strategy", "no", "--use_cpu", "true", "--disable_tqdm", "true"]
    assert main(argv) == 0
    return data, output, json.loads((output / "results.json").read_text())


def test_hf_add_train_reads_label_lists_and_trains_a_multi_label_model(multi_label_run):
    data, output, results = multi_label_run
    assert results["class_names"] == SOURCES
    fold = results["folds"][0]
    assert "accuracy" not in fold and {"map", "micro_f1", "macro_f1"} <= fold.keys()
    assert fold["map"] > 0.75  # chance (random scores) is about the positive rate, ~0.4 here
    config = json.loads((output / "test" / "config.json").read_text())
    assert config["problem_type"] == MULTI_LABEL
    assert config["hf_add_training"]["classification_loss"]["name"] == "SoftTargetBCEWithLogits"


def test_a_multi_label_model_serves_sigmoid_scores_and_evaluates_with_map(multi_label_run, tmp_path):
    data, output, results = multi_label_run
    model_dir = str(output / "test")
    wave, _ = sf.read(data / "clip_3.wav", dtype="float32")
    scores = pipeline("audio-classification", model=model_dir)(wave, top_k=4)
    model = AutoModelForAudioClassification.from_pretrained(model_dir).eval()
    features = AutoFeatureExtractor.from_pretrained(model_dir)(wave, sampling_rate=16000, return_tensors="pt")
    with torch.no_grad():
        expected = torch.sigmoid(model(**features).logits[0])
    by_label = {item["label"]: item["score"] for item in scores}
    for i, name in model.config.id2label.items():
        assert by_label[name] == pytest.approx(expected[int(i)].item(), rel=1e-4)
    assert sum(by_label.values()) != pytest.approx(1.0, abs=1e-3)  # not a softmax
    evaluated = main(["evaluate", model_dir, "--data_dir", str(data), "--split_column", "partition",
                      "--label_separator", ";", "--split", "test", "--output", str(tmp_path / "eval.json")])  # fmt: skip
    assert evaluated == 0
    report = json.loads((tmp_path / "eval.json").read_text())
    assert report["map"] == pytest.approx(results["folds"][0]["map"], abs=1e-6)
