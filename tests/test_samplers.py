"""ClassBalancedBatchSampler and ADDTrainer(samples_per_class=K), checked by counting labels and rows."""

from __future__ import annotations

import json
import math
from collections import Counter

import datasets
import numpy as np
import pytest
import torch
from transformers import TrainingArguments

from hf_add import ADDLoss, ADDTrainer
from hf_add.commands.train import parse_config
from hf_add.data.samplers import ClassBalancedBatchSampler, class_ids
from hf_add.runs import check_config, run

from .audio_fixtures import write_audiofolder
from .tiny import cpu_training_args, torchrun_on_cpu
from .workers.ddp_sampler_worker import DDP_LABELS, RecordingTrainer, indexed_rows, tiny_classifier

ESC50_LABELS = np.repeat(np.arange(50), 40)  # 2,000 clips, 50 classes × 40
UNBALANCED = np.array([0] * 30 + [1] * 11 + [2] * 7 + [3] * 5 + [4] * 3 + [5] * 2 + [6])


def all_ranks(labels, batch_size, k, world, seed=0, epoch=0) -> list[list[list[int]]]:
    """batches[rank][step] for every rank of a world."""
    samplers = [ClassBalancedBatchSampler(labels, batch_size, k, seed, world, rank) for rank in range(world)]
    for sampler in samplers:
        sampler.set_epoch(epoch)
    return [list(sampler) for sampler in samplers]


def assert_p_by_k(batch_labels, classes: int, k: int) -> None:
    counts = Counter(batch_labels)
    assert len(counts) == classes and set(counts.values()) == {k}, counts


@pytest.mark.parametrize(
    "labels, batch_size, k, world",
    [(ESC50_LABELS, 32, 4, 1), (ESC50_LABELS, 32, 2, 1), (ESC50_LABELS, 16, 4, 2), (UNBALANCED, 6, 2, 1),
     (UNBALANCED, 4, 2, 3), (UNBALANCED, 9, 3, 1)],
)  # fmt: skip
def test_batches_are_p_classes_by_k_and_ranks_split_whole_classes(labels, batch_size, k, world):
    per_rank = all_ranks(labels, batch_size, k, world, epoch=1)
    expected = len(labels) // (batch_size * world)
    assert [len(batches) for batches in per_rank] == [expected] * world
    for step in zip(*per_rank, strict=True):  # the global batch of one step: one batch per rank
        for batch in step:
            assert len(batch) == batch_size
            assert_p_by_k(labels[batch].tolist(), batch_size // k, k)
        rows = [row for batch in step for row in batch]
        assert_p_by_k(labels[rows].tolist(), world * batch_size // k, k)  # ranks hold different classes
        for rank, batch in enumerate(step):
            others = {row for other, b in enumerate(step) if other != rank for row in b}
            assert not others & set(batch)


@pytest.mark.parametrize("n", [2000, 2001, 2031, 2032, 1999])
@pytest.mark.parametrize("batch_size, world", [(32, 1), (16, 2), (8, 3)])
def test_length_is_exact(n, batch_size, world):
    labels = np.arange(n) % 50
    for rank in range(world):
        sampler = ClassBalancedBatchSampler(labels, batch_size, 4, num_replicas=world, rank=rank)
        assert len(sampler) == len(list(sampler)) == n // (batch_size * world)


def test_balanced_classes_see_every_row_at_most_once_per_epoch():
    labels = np.repeat(np.arange(8), 8)  # 16 groups of 4 fill the 8 batches of 8 exactly
    for epoch in range(3):
        (batches,) = all_ranks(labels, 8, 4, 1, epoch=epoch)
        assert sorted(row for batch in batches for row in batch) == list(range(64))
    (batches,) = all_ranks(ESC50_LABELS, 32, 4, 1, epoch=5)  # 62 batches use 496 of the 500 groups
    rows = [row for batch in batches for row in batch]
    assert len(rows) == len(set(rows)) == 62 * 32


def test_epochs_differ_and_the_seed_reproduces_them():
    def batches(seed, epoch):
        return all_ranks(ESC50_LABELS, 32, 4, 1, seed=seed, epoch=epoch)[0]

    assert batches(0, 0) == batches(0, 0) and batches(7, 3) == batches(7, 3)
    assert batches(0, 0) != batches(0, 1) != batches(0, 2)
    assert batches(0, 0) != batches(1, 0)
    sampler = ClassBalancedBatchSampler(ESC50_LABELS, 32, 4)
    assert list(sampler) == list(sampler)  # iterating twice without set_epoch repeats the epoch


def test_class_with_fewer_than_k_rows_is_drawn_with_replacement():
    labels = np.array([0] + [1] * 2 + [2] * 9 + [3] * 9)  # 4 classes in every batch of 4 × 3
    for epoch in range(4):
        (batches,) = all_ranks(labels, 12, 3, 1, epoch=epoch)
        for batch in batches:
            assert_p_by_k(labels[batch].tolist(), 4, 3)
            assert [row for row in batch if labels[row] == 0] == [0, 0, 0]
            pair = [row for row in batch if labels[row] == 1]
            assert set(pair) == {1, 2}  # both rows, one twice
            assert max(Counter(row for row in batch if labels[row] > 1).values()) == 1


def test_dominant_class_still_gives_p_by_k_batches():
    labels = np.array([0] * 500 + [1, 1, 2, 2, 3])
    (batches,) = all_ranks(labels, 4, 2, 1)
    assert len(batches) == len(labels) // 4
    for batch in batches:
        assert_p_by_k(labels[batch].tolist(), 2, 2)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(samples_per_class=1), "samples_per_class must be an integer >= 2"),
        (dict(batch_size=6, samples_per_class=4), "not a multiple of samples_per_class 4"),
        (dict(batch_size=32, samples_per_class=2), "needs 16 distinct classes"),
        (dict(num_replicas=2, batch_size=8), "needs 8 distinct classes"),
        (dict(labels=[[0.5, 0.5]] * 40), "soft labels"),
        (dict(labels=np.arange(40.0)), "integer class id"),
        (dict(labels=[-100, 0, 1, 2] * 10), "non-negative"),
        (dict(labels=[0, 1, 2, 3, 0, 1], batch_size=8), "fewer than one global batch"),
        (dict(rank=2, num_replicas=2), "rank 2 is not in"),
    ],
)
def test_bad_arguments_name_the_problem(kwargs, message):
    arguments = dict(labels=np.arange(40) % 7, batch_size=4, samples_per_class=2)
    with pytest.raises(ValueError, match=message):
        ClassBalancedBatchSampler(**{**arguments, **kwargs})


def test_class_ids_read_a_datasets_column_or_rows():
    table = datasets.Dataset.from_dict({"labels": [3, 1, 4, 1, 5], "audio": [[0.0]] * 5}).select([4, 2, 0])
    assert class_ids(table).tolist() == [5, 4, 3]
    assert class_ids(indexed_rows([2, 0, 1])).tolist() == [2, 0, 1]
    with pytest.raises(ValueError, match="no 'labels' column"):
        class_ids(table.remove_columns("labels"))


# ---- inside ADDTrainer ----


def make_args(tmp_path, **overrides) -> TrainingArguments:
    return cpu_training_args(
        tmp_path, **{"per_device_train_batch_size": 4, "per_device_eval_batch_size": 5, **overrides}
    )


TRAIN_LABELS = [0] * 12 + [1] * 10 + [2] * 8 + [3] * 6 + [4] * 4  # 40 rows, 10 batches of 2 classes × 2


def balanced_trainer(args, labels=TRAIN_LABELS, **kwargs) -> RecordingTrainer:
    return RecordingTrainer(
        model=tiny_classifier(max(labels) + 1),
        args=args,
        train_dataset=indexed_rows(labels),
        embedding_loss=ADDLoss(),
        samples_per_class=2,
        **kwargs,
    )


def test_trainer_resumed_mid_epoch_sees_the_same_batches_with_gradient_accumulation(tmp_path):
    # 10 micro-batches per epoch, 2 per step: 5 steps per epoch; the checkpoint is 2 steps into epoch 1.
    def run(output_dir, resume=None):
        args = make_args(
            output_dir, gradient_accumulation_steps=2, max_steps=12, save_strategy="steps", save_steps=7
        )
        trainer = balanced_trainer(args)
        trainer.train(resume_from_checkpoint=resume)
        return trainer

    full = run(tmp_path / "full")
    resumed = run(tmp_path / "resumed", resume=str(tmp_path / "full" / "checkpoint-7"))
    assert len(full.get_train_dataloader()) == len(TRAIN_LABELS) // 4 == 10
    seen = full.seen["train"]
    assert len(seen) == 24 and resumed.seen["train"] == seen[14:]
    labels = np.array(TRAIN_LABELS)
    for batch in seen:
        assert_p_by_k(batch["labels"], 2, 2)
        assert labels[batch["rows"]].tolist() == batch["labels"]
    epochs = [[batch["rows"] for batch in seen[start : start + 10]] for start in (0, 10)]
    assert epochs[0] != epochs[1]
    # every micro-batch has 2 classes × 2 samples: 2 × (2 × 1) = 4 ordered positive pairs
    assert {logs["positive_pairs"] for logs in full.state.log_history if "loss" in logs} == {4.0}
    full.create_model_card()
    assert "| samples_per_class | 2 |" in (tmp_path / "full" / "README.md").read_text()


def test_evaluation_and_the_default_are_unchanged(tmp_path):
    eval_labels = [0, 1, 2, 3, 4, 0, 1]
    trainer = balanced_trainer(
        make_args(tmp_path, num_train_epochs=1), eval_dataset=indexed_rows(eval_labels)
    )
    trainer.train()
    trainer.evaluate()
    assert len(trainer.seen["train"]) == 10
    assert [batch["rows"] for batch in trainer.seen["eval"]] == [[0, 1, 2, 3, 4], [5, 6]]
    default = ADDTrainer(
        model=tiny_classifier(5), args=make_args(tmp_path), train_dataset=indexed_rows(TRAIN_LABELS[:-1])
    )
    loader = default.get_train_dataloader()
    assert isinstance(loader.batch_sampler.sampler, torch.utils.data.RandomSampler)
    assert len(loader) == math.ceil(39 / 4)


class MixupCollator:
    mixup = 0.5

    def __call__(self, rows):  # pragma: no cover - never called
        raise AssertionError


@pytest.mark.parametrize(
    "overrides, kwargs, message",
    [
        ({}, dict(data_collator=MixupCollator()), "mixup 0.5"),
        ({"per_device_train_batch_size": 5}, {}, "batch size 5 is not a multiple"),
        ({"train_sampling_strategy": "group_by_length"}, {}, "leave train_sampling_strategy"),
    ],
)
def test_trainer_refuses_what_balanced_batches_cannot_do(tmp_path, overrides, kwargs, message):
    with pytest.raises(ValueError, match=message):
        balanced_trainer(make_args(tmp_path, **overrides), **kwargs)


def test_the_trainer_internals_the_balanced_loader_relies_on_still_exist(tmp_path):
    """hf_add/data/balanced_loader.py builds Trainer's training DataLoader with these private pieces of
    transformers and accelerate; a release that renames one fails here, by name, before any training."""
    import inspect

    from accelerate.data_loader import BatchSamplerShard
    from transformers import Trainer

    for name in ("_remove_unused_columns", "_get_collator_with_removed_columns"):
        assert callable(getattr(Trainer, name, None)), (
            f"Trainer.{name} is gone: update data/balanced_loader.py"
        )
    trainer = balanced_trainer(make_args(tmp_path))
    assert trainer._train_batch_size == 4, "Trainer._train_batch_size changed: update data/balanced_loader.py"
    parameters = inspect.signature(BatchSamplerShard.__init__).parameters
    for name in ("batch_sampler", "num_processes", "process_index"):
        assert name in parameters, (
            f"accelerate's BatchSamplerShard has no {name}: update data/balanced_loader.py"
        )
    loader = trainer.get_train_dataloader()  # the wrapper it patches is still where it looks for it
    assert len(next(iter(loader))["labels"]) == 4


def test_trainer_refuses_soft_labels(tmp_path):
    soft = [{"input_values": torch.zeros(8), "labels": torch.tensor([0.5, 0.5])} for _ in range(8)]
    trainer = balanced_trainer(make_args(tmp_path))
    trainer.train_dataset = soft
    with pytest.raises(ValueError, match="soft labels"):
        trainer.get_train_dataloader()


def test_two_processes_get_disjoint_whole_classes_equal_counts_and_resume(tmp_path):
    torchrun_on_cpu("tests.workers.ddp_sampler_worker", str(tmp_path))
    ranks = [json.loads((tmp_path / f"seen_rank{rank}.json").read_text()) for rank in range(2)]
    per_epoch = len(DDP_LABELS) // (4 * 2)  # 43 rows, global batch 8: 5 batches on each rank
    assert [rank["length"] for rank in ranks] == [per_epoch] * 2
    assert [len(rank["full"]) for rank in ranks] == [12, 12]
    labels = np.array(DDP_LABELS)
    for first, second in zip(ranks[0]["full"], ranks[1]["full"], strict=True):
        for batch in (first, second):
            assert_p_by_k(batch["labels"], 2, 2)
            assert labels[batch["rows"]].tolist() == batch["labels"]
        assert not set(first["rows"]) & set(second["rows"])
        assert_p_by_k(first["labels"] + second["labels"], 4, 2)  # the global batch: 4 classes × 2
    for rank in ranks:
        assert rank["resumed"] == rank["full"][7:]  # checkpoint-7 is 2 batches into epoch 1
        assert rank["full"][:per_epoch] != rank["full"][per_epoch : 2 * per_epoch]


# ---- hf-add train ----


def test_hf_add_train_samples_per_class(tmp_path):
    seen = []

    class LabelRecordingTrainer(ADDTrainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            if model.training:
                seen.append(inputs["labels"].tolist())
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)

    root = write_audiofolder(tmp_path / "data", ["left", "right", "up"], 6, seconds=0.2)
    argv = [
        "--dataset_name", "audiofolder", "--data_dir", str(root), "--fold_column", "fold", "--cv_folds", "1",
        "--model_name_or_path", "ast-tiny", "--ast_max_length", "32", "--max_steps", "3",
        "--per_device_train_batch_size", "4", "--samples_per_class", "2", "--report_to", "none",
        "--use_cpu", "true", "--output_dir", str(tmp_path / "run"), "--logging_steps", "1",
    ]  # fmt: skip
    results = run(parse_config(argv), trainer_class=LabelRecordingTrainer).results
    assert results["arguments"]["data"]["samples_per_class"] == 2
    assert len(seen) == 3
    for labels in seen:
        assert_p_by_k(labels, 2, 2)
    assert results["folds"][0]["train_positive_pairs"] == 2 * (2 * 1)  # 2 classes × 2·1 ordered pairs
    assert "samples_per_class" in (tmp_path / "run" / "fold1" / "README.md").read_text()
    with pytest.raises(ValueError, match="samples_per_class draws batches by class id, but mixup 0.5"):
        check_config(parse_config([*argv, "--mixup", "0.5"]))
