"""The training DataLoader of ``ADDTrainer(samples_per_class=K)``: class-balanced batches inside Trainer.

Trainer passes any sampler it gets as ``sampler=`` and accelerate shards the batches over processes, so a
batch sampler that is already rank-aware needs its own DataLoader. accelerate wraps it in a
``BatchSamplerShard`` that would split the rank-local batches again; we make that wrapper a passthrough (as
Trainer does for its own ``BatchRebalanceSampler``) and let it forward ``set_epoch``: on a mid-epoch resume
Trainer calls ``set_epoch`` only on the sampler under ``skip_first_batches``' wrapper, which is that
``BatchSamplerShard``, and without the forward the resumed epoch would replay epoch 0's batches.
"""

from __future__ import annotations

from functools import partial

import datasets
import torch
from transformers import Trainer
from transformers.trainer_utils import has_length, seed_worker

from hf_add.data.samplers import ClassBalancedBatchSampler, class_ids


def check_balanced_batches(samples_per_class: int | None, mixup: float) -> None:
    """The one check of class-balanced batches against mixup (whose soft labels are not class ids)."""
    if samples_per_class is not None and mixup:
        raise ValueError(
            f"samples_per_class draws batches by class id, but mixup {mixup} makes soft labels, which are not "
            "class ids: turn one of them off"
        )


def check_samples_per_class(trainer: Trainer, samples_per_class: int) -> None:
    """Refuse, when the trainer is built, what class-balanced batches cannot do."""
    ClassBalancedBatchSampler.check_arguments(trainer.args.train_batch_size, samples_per_class)
    check_balanced_batches(samples_per_class, getattr(trainer.data_collator, "mixup", 0))
    if trainer.args.train_sampling_strategy != "random":
        raise ValueError(
            "samples_per_class chooses the training batches itself: leave train_sampling_strategy at 'random' "
            f"(got {trainer.args.train_sampling_strategy!r})"
        )
    if trainer.accelerator.split_batches or trainer.accelerator.dispatch_batches:
        raise ValueError(
            "samples_per_class gives every process its own batch: leave accelerator_config's split_batches "
            "and dispatch_batches off"
        )


def class_balanced_train_dataloader(trainer: Trainer, samples_per_class: int) -> torch.utils.data.DataLoader:
    """Trainer's training DataLoader with ``ClassBalancedBatchSampler`` batches (same workers, collator,
    column removal and device placement as ``Trainer.get_train_dataloader``)."""
    args, dataset = trainer.args, trainer.train_dataset
    if dataset is None:
        raise ValueError("Trainer: training requires a train_dataset.")
    if isinstance(dataset, torch.utils.data.IterableDataset) or not has_length(dataset):
        raise ValueError(
            "samples_per_class picks training rows by index: it needs a map-style train_dataset with a length, "
            f"got {type(dataset).__name__}"
        )
    sampler = ClassBalancedBatchSampler(
        class_ids(dataset),
        batch_size=trainer._train_batch_size,
        samples_per_class=samples_per_class,
        seed=args.data_seed if args.data_seed is not None else args.seed,
        num_replicas=args.world_size,
        rank=args.process_index,
    )
    collator = trainer.data_collator
    if isinstance(dataset, datasets.Dataset):
        dataset = trainer._remove_unused_columns(dataset, description="Training")
    else:
        collator = trainer._get_collator_with_removed_columns(collator, description="Training")
    dataloader = torch.utils.data.DataLoader(
        dataset,
        batch_sampler=sampler,
        collate_fn=collator,
        num_workers=args.dataloader_num_workers,
        pin_memory=args.dataloader_pin_memory,
        persistent_workers=args.dataloader_persistent_workers,
        multiprocessing_context=args.dataloader_multiprocessing_context,
        prefetch_factor=args.dataloader_prefetch_factor,
        in_order=args.dataloader_in_order,
        worker_init_fn=partial(seed_worker, num_workers=args.dataloader_num_workers, rank=args.process_index),
    )
    prepared = trainer.accelerator.prepare(dataloader)
    shard = getattr(prepared, "batch_sampler", None)
    if shard is not sampler:
        if getattr(shard, "batch_sampler", None) is not sampler:
            raise RuntimeError(
                f"accelerate wrapped the class-balanced batch sampler in an unexpected way ({type(shard).__name__}"
                f" over {type(getattr(shard, 'batch_sampler', None)).__name__}); leave samples_per_class unset "
                "with this accelerate setup"
            )
        shard.num_processes, shard.process_index = 1, 0
        shard.set_epoch = sampler.set_epoch
    return prepared
