#!/usr/bin/env python
"""Fine-tune an audio classifier with cross-entropy + the ADD loss: an ordinary Trainer script, one line changed.

This is the script to copy when ``hf-add train`` does not fit: Trainer's own arguments, optimizer and
schedule, a Hub dataset with a train and an evaluation split, any ``*ForAudioClassification`` checkpoint.
What differs from a plain Trainer script is ``ADDTrainer(..., embedding_loss=ADDLoss(...))`` and the two
data helpers: ``decode_and_check`` (decode every clip once, name unusable ones) and the collator.

    python scripts/run_audio_classification.py \
        --model_name_or_path MIT/ast-finetuned-audioset-10-10-0.4593 \
        --dataset_name ashraq/esc50 --label_column_name category --eval_split_name train \
        --output_dir runs/esc50-add --per_device_train_batch_size 32 --learning_rate 1e-5 \
        --num_train_epochs 5 --eval_strategy epoch --lambdas 1 1 1 1
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field

from datasets import ClassLabel, load_dataset
from transformers import (
    AutoFeatureExtractor,
    AutoModelForAudioClassification,
    HfArgumentParser,
    TrainingArguments,
    set_seed,
)

from hf_add import ADDLoss, ADDTrainer
from hf_add.data import AudioClassificationCollator, AugmentationSwitch, decode_and_check

logger = logging.getLogger(__name__)


@dataclass
class DataTrainingArguments:
    dataset_name: str = field(metadata={"help": "A Hub dataset id, or 'audiofolder' with --data_dir."})
    dataset_config_name: str | None = None
    data_dir: str | None = None
    train_split_name: str = "train"
    eval_split_name: str = "validation"
    audio_column_name: str = "audio"
    label_column_name: str = "label"
    max_train_samples: int | None = None
    max_eval_samples: int | None = None
    skip_corrupt: bool = field(default=False, metadata={"help": "Skip (and list) unusable clips."})
    freq_mask: int = field(default=0, metadata={"help": "SpecAugment frequency mask width, training only."})
    time_mask: int = field(default=0, metadata={"help": "SpecAugment time mask width, training only."})


@dataclass
class ModelArguments:
    model_name_or_path: str = field(
        metadata={"help": "A checkpoint with a feature extractor (Hub id or dir)."}
    )
    lambdas: list[float] = field(
        default_factory=lambda: [1.0, 1.0, 1.0, 1.0],
        metadata={"help": "ADD weights λ for μp σp μn σn (paper eq. 5); 0 0 0 0 trains with CE alone."},
    )


def class_names(dataset, label_column: str) -> list[str]:
    feature = dataset.features[label_column]
    return (
        feature.names if isinstance(feature, ClassLabel) else sorted({str(v) for v in dataset[label_column]})
    )


def prepare(
    dataset, split: str, data_args: DataTrainingArguments, label2id: dict[str, int], limit: int | None
):
    """Class ids in ``labels`` (by name), then every clip decoded once into ``waveform`` (16 kHz mono)."""
    if limit is not None:
        dataset = dataset.select(range(min(limit, len(dataset))))
    feature = dataset.features[data_args.label_column_name]
    to_name = feature.int2str if isinstance(feature, ClassLabel) else str
    unknown = sorted({to_name(label) for label in dataset[data_args.label_column_name]} - label2id.keys())
    if unknown:
        raise ValueError(f"the {split} split has labels {unknown} that the train split does not have")
    dataset = dataset.map(
        lambda label: {"labels": label2id[to_name(label)]}, input_columns=data_args.label_column_name
    )
    dataset, _ = decode_and_check(dataset, split, data_args.audio_column_name, data_args.skip_corrupt)
    return dataset


def main(argv: list[str] | None = None) -> dict:
    parser = HfArgumentParser((ModelArguments, DataTrainingArguments, TrainingArguments))
    model_args, data_args, training_args = parser.parse_args_into_dataclasses(argv)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    set_seed(training_args.seed)

    raw = load_dataset(data_args.dataset_name, data_args.dataset_config_name, data_dir=data_args.data_dir)
    for split in (data_args.train_split_name, data_args.eval_split_name):
        if split not in raw:
            raise ValueError(
                f"--dataset_name {data_args.dataset_name} has no split {split!r}; it has {list(raw)}"
            )
    names = class_names(raw[data_args.train_split_name], data_args.label_column_name)
    label2id = {name: i for i, name in enumerate(names)}
    train = prepare(
        raw[data_args.train_split_name], "train", data_args, label2id, data_args.max_train_samples
    )
    evaluation = prepare(
        raw[data_args.eval_split_name], "eval", data_args, label2id, data_args.max_eval_samples
    )

    feature_extractor = AutoFeatureExtractor.from_pretrained(model_args.model_name_or_path)
    model = AutoModelForAudioClassification.from_pretrained(
        model_args.model_name_or_path,
        id2label=dict(enumerate(names)),
        label2id=label2id,
        ignore_mismatched_sizes=True,  # a new classification head for this dataset's classes
    )
    collator = AudioClassificationCollator(
        feature_extractor,
        num_labels=len(names),
        audio_column=data_args.audio_column_name,
        freq_mask=data_args.freq_mask,
        time_mask=data_args.time_mask,
    )
    training_args.remove_unused_columns = False  # the collator reads the waveform, not model inputs
    if len(model_args.lambdas) != 4:
        raise ValueError(f"--lambdas takes 4 numbers (μp σp μn σn), got {model_args.lambdas}")
    lambda_mu_p, lambda_sigma_p, lambda_mu_n, lambda_sigma_n = model_args.lambdas
    trainer = ADDTrainer(  # the one change from a Trainer script
        model=model,
        args=training_args,
        train_dataset=collator.prepare(train),
        eval_dataset=collator.prepare(evaluation),
        processing_class=feature_extractor,
        data_collator=collator,
        callbacks=[AugmentationSwitch(collator)],
        embedding_loss=ADDLoss(lambda_mu_p, lambda_sigma_p, lambda_mu_n, lambda_sigma_n),
    )
    trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
    trainer.save_model()
    metrics = trainer.evaluate()
    trainer.log_metrics("eval", metrics)
    trainer.save_metrics("eval", metrics)
    trainer.create_model_card(finetuned_from=model_args.model_name_or_path, dataset=data_args.dataset_name)
    return metrics


if __name__ == "__main__":
    main(sys.argv[1:])
