"""The typed run API: a protocol's folds trained with ADDTrainer, reruns and resumes planned, results written.

    from hf_add.runs import RunConfig, run

    config = RunConfig.from_values({"model_name_or_path": "ast-mini", "dataset": "esc50", "loss": "add",
                                    "output_dir": "runs/esc50-add"})
    result = run(config)                      # RunResult: result.folds, result.mean, result.std

The settings are grouped by what they are: ``ModelSettings``, ``DataSettings``, ``LossSettings``,
``AugmentationSettings``, ``ScheduleSettings`` and ``RunTrainingArguments`` (Trainer's own). Each field is
also a flag of ``hf-add train`` (``hf_add.commands.train``), which parses them and calls ``run``.

Each fold's final model is saved in ``output_dir/<fold>`` with its feature extractor (so
``pipeline("audio-classification", model=dir)`` works) and its model card; ``output_dir/results.json`` holds
every fold's test accuracy and embedding-geometry summaries, their mean and standard deviation.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import errno
import json
import logging
import math
import os
import re
import shutil
import statistics
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

import numpy as np
import pyarrow.compute as pc
import torch
from transformers import HfArgumentParser, TrainingArguments, set_seed

from hf_add.data import AudioClassificationCollator, AugmentationSwitch, get_spec
from hf_add.data.audio import SAMPLING_RATE, WAVEFORM_COLUMN
from hf_add.data.balanced_loader import check_balanced_batches
from hf_add.data.presets import DatasetSpec, card_dataset, is_multi_label, keep_saved_class_order, make_folds
from hf_add.data.streaming import StreamingClips, forget_skipped_clips, read_skipped_clips, stream_fold
from hf_add.embedding_metrics import REPORTED_METRICS
from hf_add.files import finite_or_null, write_json
from hf_add.geometry import GEOMETRY_SUMMARIES
from hf_add.losses import ADDLoss, FocalLoss, OrthogonalProjectionLoss
from hf_add.losses.add import SOFT_MU_FORMS
from hf_add.losses.registry import CLASSIFICATION_LOSS_NAMES, TABLE2_LOSS_NAMES
from hf_add.model_card import card_results
from hf_add.models.loading import (
    NAMED_CONFIGS,
    check_model_location,
    load_feature_extractor,
    load_model_and_extractor,
    model_type_of,
)
from hf_add.run_lock import run_lock
from hf_add.trainer import ADDTrainer

logger = logging.getLogger(__name__)


@dataclass
class ModelSettings:
    """The model to fine-tune (or a named AST config to train from scratch) and its input length."""

    model_name_or_path: str = field(
        metadata={
            "help": "Hub id or local directory of an AST / BEATs checkpoint, or ast-tiny|ast-mini|ast-small|ast-base "
            "to train an AST from scratch. The model type is read from the checkpoint's config."
        }
    )
    ast_max_length: int | None = field(
        default=None,
        metadata={
            "help": "AST input frames, 10 ms each; longer clips are cut (default: a preset's, e.g. 512 for "
            "ESC-50, else the longest clip, capped by the checkpoint's max_length)."
        },
    )


@dataclass
class DataSettings:
    """The dataset, its protocol (folds, splits), and how training batches are drawn from it."""

    dataset: str | None = field(
        default=None, metadata={"help": "Preset with the paper's protocol: esc50|ks2|er."}
    )
    dataset_name: str | None = field(default=None, metadata={"help": "Any Hub dataset, or 'audiofolder'."})
    dataset_config_name: str | None = field(
        default=None, metadata={"help": "The Hub dataset's configuration (subset) name, if it has several."}
    )
    dataset_revision: str | None = field(
        default=None, metadata={"help": "The Hub dataset's branch, tag or commit (default: its main branch)."}
    )
    data_dir: str | None = field(
        default=None, metadata={"help": "Local folder (with dataset_name audiofolder)."}
    )
    audio_column: str | None = field(
        default=None, metadata={"help": "Column of the audio clips (default: the preset's, else 'audio')."}
    )
    label_column: str | None = field(
        default=None,
        metadata={"help": "Column of the class of each clip, a name or a class id (default: 'label')."},
    )
    label_names_column: str | None = field(
        default=None,
        metadata={"help": "Column of class names, when label_column holds ids: fixes the names of the ids."},
    )
    label_separator: str | None = field(
        default=None,
        metadata={
            "help": "Multi-label data: split each clip's label text on this separator (e.g. ';' for 'dog;bark'). "
            "A list-valued label column is multi-label without it. Trains with BCE; reports mAP and F1."
        },
    )
    fold_column: str | None = field(
        default=None, metadata={"help": "k-fold CV: each value is a test fold once."}
    )
    fold_splits: list[str] | None = field(
        default=None, metadata={"help": "Leave-one-split-out CV over these splits (IEMOCAP sessions)."}
    )
    split_column: str | None = field(
        default=None,
        metadata={"help": "Column whose values (e.g. train/validation/test) split a single-split dataset."},
    )
    train_split: str | None = field(default=None, metadata={"help": "Split to train on (default: 'train')."})
    validation_split: str | None = field(
        default=None, metadata={"help": "Split evaluated during training (--eval_strategy); none by default."}
    )
    test_split: str | None = field(
        default=None, metadata={"help": "Split of the final test (without --fold_column / --fold_splits)."}
    )
    cv_folds: int | None = field(
        default=None, metadata={"help": "Run only the first n folds (default: all)."}
    )
    max_train_samples: int | None = field(
        default=None, metadata={"help": "Train on the first n clips of each fold only (a quick check)."}
    )
    max_eval_samples: int | None = field(
        default=None, metadata={"help": "Validate and test on the first n clips only (a quick check)."}
    )
    skip_corrupt: bool = field(
        default=False,
        metadata={
            "help": "Skip unusable clips (undecodable, empty, NaN/inf, shorter than 25 ms) and list them in "
            "results.json and skipped_clips.json, instead of stopping."
        },
    )
    samples_per_class: int | None = field(
        default=None,
        metadata={
            "help": "Class-balanced training batches: batch size / K classes × K samples each, so every batch "
            "has positive pairs (default: random batches)."
        },
    )
    preprocessing_num_workers: int | None = field(
        default=None,
        metadata={
            "help": "Processes that decode, check and compute features (datasets' num_proc): the same waveforms, "
            "features and errors as one. Under torchrun only the processes that preprocess start them."
        },
    )
    feature_device: str | None = field(
        default=None,
        metadata={
            "help": "Compute the fbank features of each batch (and SpecAugment) on this device, e.g. cuda: the "
            "batched fbank of AST / BEATs in the collator. No loader workers; pinned memory is turned off."
        },
    )
    streaming: bool = field(
        default=False,
        metadata={
            "help": "Read the data as a stream (datasets' streaming=True: Hub, Parquet, WebDataset, audiofolder): "
            "clips decoded, checked and turned into features in the DataLoader workers (--dataloader_num_workers), "
            "nothing cached on disk; each process reads its own shards. Needs --max_steps; fixed splits only."
        },
    )
    shuffle_buffer_size: int = field(
        default=1000,
        metadata={
            "help": "Streaming: training rows are shuffled in a buffer of this many (and by shard), anew "
            "each pass over the data."
        },
    )
    class_names: list[str] | None = field(
        default=None,
        metadata={
            "help": "The classes in id order (default: a preset's, else the labels found in the data). A stream "
            "needs them unless its label column is a ClassLabel."
        },
    )

    def spec(self) -> DatasetSpec:
        return get_spec(
            self.dataset,
            path=self.dataset_name,
            config_name=self.dataset_config_name,
            revision=self.dataset_revision,
            data_dir=self.data_dir,
            audio_column=self.audio_column,
            label_column=self.label_column,
            label_names_column=self.label_names_column,
            label_separator=self.label_separator,
            fold_column=self.fold_column,
            fold_splits=tuple(self.fold_splits) if self.fold_splits else None,
            split_column=self.split_column,
            train_split=self.train_split,
            validation_split=self.validation_split,
            test_split=self.test_split,
            class_names=tuple(self.class_names) if self.class_names else None,
        )


@dataclass
class LossSettings:
    """The loss of Table 2 (ce, focal, opl, add), its weights, and the classification loss."""

    loss: str = field(default="add", metadata={"help": "ce|focal|opl|add: the loss of Table 2."})
    add_lambdas: list[float] = field(
        default_factory=lambda: [1.0, 1.0, 1.0, 1.0], metadata={"help": "ADD weights λ (μp σp μn σn)."}
    )
    add_lambda_mu: float = field(default=1.0, metadata={"help": "ADD weight of L_μ (soft labels)."})
    add_soft_mu: str = field(
        default="paper",
        metadata={"help": "paper|per_set: L_μ over all pairs (eq. 7), or the sum of its per-pair-set means."},
    )
    focal_gamma: float = field(
        default=2.0, metadata={"help": "The ADD authors' code leaves γ at 0; we use 2."}
    )
    opl_gamma: float = field(
        default=2.0, metadata={"help": "OPL negative-pair weight (the ADD authors': 2)."}
    )
    opl_weight: float = field(
        default=0.1, metadata={"help": "Weight of OPL added to CE (the ADD authors': 0.1)."}
    )
    classification_loss: str | None = field(
        default=None,
        metadata={
            "help": "ce|bce (sigmoid BCE, authors' mixup runs); default: ce, or bce for multi-label data."
        },
    )


@dataclass
class AugmentationSettings:
    """Mixup (soft labels) and SpecAugment, applied by the collator to training batches only."""

    mixup: float = field(default=0.0, metadata={"help": "Probability of mixing a training sample."})
    mixup_alpha: float = field(default=10.0, metadata={"help": "λ ~ Beta(alpha, alpha)."})
    freq_mask: int = field(default=0, metadata={"help": "SpecAugment frequency mask width (bins)."})
    time_mask: int = field(default=0, metadata={"help": "SpecAugment time mask width (frames)."})


@dataclass
class ScheduleSettings:
    """The optimizer and learning-rate schedule (Trainer's own ``--optim`` and schedule are not used)."""

    optimizer: str = field(default="adamw", metadata={"help": "adamw|adam (Adam: L2 weight decay)."})
    warmup_epochs: float = field(
        default=0.0, metadata={"help": "Epochs of linear learning-rate warm-up from 0 (fractions allowed)."}
    )
    lr_schedule: str = field(
        default="constant",
        metadata={"help": "After warm-up: constant|cosine|exponential (×lr_decay per epoch)."},
    )
    lr_decay: float = field(
        default=0.85, metadata={"help": "Factor per epoch of --lr_schedule exponential, in (0, 1]."}
    )
    recipe: str = field(
        default="custom", metadata={"help": "Recorded in results.json (paper|authors|custom)."}
    )


@dataclass
class RunTrainingArguments(TrainingArguments):
    """``TrainingArguments`` with the rerun switch of the HF example scripts; the optimizer and schedule are
    set by ``ScheduleSettings`` (``--optimizer``, ``--warmup_epochs``, ``--lr_schedule``), so Trainer's own
    ``--optim`` and ``--lr_scheduler_type`` are refused rather than silently ignored (``--warmup_steps``: only with
    ``--streaming true``, see ``check_config``)."""

    overwrite_output_dir: bool = field(
        default=False,
        metadata={"help": "Start over in an output_dir that holds a run (its checkpoints and results go)."},
    )
    resume_from_checkpoint: str | None = field(
        default=None,
        metadata={
            "help": "Continue the run in output_dir: true (finished folds kept, the others from their last "
            "complete checkpoint) or one fold's checkpoint-N directory. Its arguments must be the same."
        },
    )

    def __post_init__(self):
        defaults = {field.name: field.default for field in fields(TrainingArguments)}
        given = [
            f"--{name}" for name in ("optim", "lr_scheduler_type") if getattr(self, name) != defaults[name]
        ]
        if given:
            raise ValueError(
                "hf-add train sets the optimizer and learning-rate schedule itself: use --optimizer adam|adamw "
                f"and --lr_schedule constant|cosine|exponential instead of {', '.join(given)}"
            )
        super().__post_init__()


SETTINGS = {
    "model": ModelSettings,
    "data": DataSettings,
    "loss": LossSettings,
    "augmentation": AugmentationSettings,
    "schedule": ScheduleSettings,
    "training": RunTrainingArguments,
}


def _flag(value: Any) -> list[str]:
    if isinstance(value, bool):
        return [str(value).lower()]
    if isinstance(value, (list, tuple)):
        return [str(item) for item in value]
    return [str(value)]


@dataclass
class RunConfig:
    """Everything one run is made of, grouped by what it is; ``run(config)`` trains it.

    Build it from the settings objects, or with ``RunConfig.from_values({...})`` from setting names and
    values (the names of ``hf-add train``'s flags), which also keeps the values as given so that
    ``command_line()`` can print the equivalent ``hf-add train`` command.
    """

    model: ModelSettings
    data: DataSettings
    training: RunTrainingArguments
    loss: LossSettings = field(default_factory=LossSettings)
    augmentation: AugmentationSettings = field(default_factory=AugmentationSettings)
    schedule: ScheduleSettings = field(default_factory=ScheduleSettings)
    given: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> RunConfig:
        """The config of ``values`` (setting name -> value), each converted to its setting's type as
        ``hf-add train`` converts its flags (``parse_settings``); an unknown name or a value of the wrong
        type is an error that names it and the type expected."""
        return parse_settings(values, given=dict(values))

    def with_values(self, **values: Any) -> RunConfig:
        """This config (it must come from ``from_values``) with some settings replaced or added."""
        return RunConfig.from_values({**self.given, **values})

    def command_line(self) -> str:
        """The ``hf-add train`` command of the values this config was made from."""
        words = [word for name, value in self.given.items() for word in (f"--{name}", *_flag(value))]
        return " ".join(["hf-add train", *words])

    def arguments(self) -> dict:
        """What ``arguments.json`` (and results.json's ``arguments``) holds: every setting, by group."""
        return {
            name: getattr(self, name).to_dict() if name == "training" else asdict(getattr(self, name))
            for name in SETTINGS
        }


REFUSED_TRAINER_FLAGS = ("optim", "lr_scheduler_type")  # see RunTrainingArguments


def settings_parser(prog: str = "hf-add train") -> HfArgumentParser:
    """The parser of every setting of a run (``hf-add train``'s flags), in the order of ``SETTINGS``; the
    Trainer flags that ``hf-add train`` refuses are left out of its help."""
    parser = HfArgumentParser(tuple(SETTINGS.values()), prog=prog)
    for action in parser._actions:
        if action.dest in REFUSED_TRAINER_FLAGS:
            action.help = argparse.SUPPRESS
    return parser


class _RaisingParser:
    """``settings_parser`` whose mistakes raise ``ValueError`` (one line) instead of printing usage and exiting."""

    TYPES = {"float": "a number", "int": "a whole number", "string_to_bool": "true or false"}

    def __init__(self, file_keys: set[str], source: str | None):
        self.parser = settings_parser()
        self.parser.error = self.error
        self.file_keys, self.source = file_keys, source
        self.actions = {action.dest: action for action in self.parser._actions if action.option_strings}

    def where(self, key: str) -> str:
        return f"{key} in {self.source}" if key in self.file_keys and self.source else f"--{key}"

    def error(self, message: str):
        invalid = re.fullmatch(r"argument --([\w-]+)(?:/\S+)?: invalid (\w+) value: (.*)", message)
        if invalid:
            key, kind, value = invalid.groups()
            key = key.replace("-", "_")
            expected = self.TYPES.get(kind, kind)
            raise ValueError(f"{self.where(key)} must be {expected} ({kind}), got {value}")
        other = re.fullmatch(r"argument --([\w-]+)(?:/\S+)?: (.*)", message)
        if other:
            raise ValueError(f"{self.where(other.group(1).replace('-', '_'))}: {other.group(2)}")
        required = re.fullmatch(r"the following arguments are required: (.*)", message)
        if required:
            names = ", ".join(re.sub(r"/\S+", "", name) for name in required.group(1).split(", "))
            raise ValueError(
                f"{names} is required: give it as a flag"
                + (f" or as a key of {self.source}" if self.source else "")
            )
        raise ValueError(message)

    def flags(self, values: Mapping[str, Any]) -> list[str]:
        """``values`` written as the flags that set them (None: the setting's default, so no flag)."""
        argv = []
        for key, value in values.items():
            if key not in self.actions:
                close = difflib.get_close_matches(key, list(self.actions), n=1)
                hint = f" (did you mean {close[0]}?)" if close else ""
                where = f" in {self.source}" if self.source else ""
                raise ValueError(
                    f"unknown setting {key!r}{where}{hint}: hf-add train --help lists every setting"
                )
            action = self.actions[key]
            if value is None:
                if action.default is not None and not action.required:
                    raise ValueError(
                        f"{self.where(key)} is null: leave it out for its default ({action.default!r})"
                    )
                continue
            if isinstance(value, (list, tuple)):
                if action.nargs not in ("+", "*"):
                    if len(value) != 1:
                        raise ValueError(f"{self.where(key)} takes one value, got the list {list(value)}")
                    value = value[0]
                else:
                    argv += [f"--{key}", *(_flag_word(item) for item in value)]
                    continue
            if action.type is int and isinstance(value, float) and value.is_integer():
                value = int(value)  # 3.0 is a whole number (YAML and JSON writers make such floats)
            argv.append(f"--{key}={_flag_word(value)}")
        return argv

    def parse(self, argv: list[str]) -> tuple:
        *parsed, remaining = self.parser.parse_args_into_dataclasses(args=argv, return_remaining_strings=True)
        if remaining:
            raise ValueError(
                f"unrecognized argument(s) {' '.join(remaining)}: hf-add train --help lists every setting"
            )
        return tuple(parsed)


def _flag_word(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, Mapping):
        return json.dumps(value)
    return str(value)


def parse_settings(
    values: Mapping[str, Any] | None = None,
    argv: list[str] | None = None,
    source: str | None = None,
    given: dict[str, Any] | None = None,
) -> RunConfig:
    """The config of setting ``values`` (e.g. a config file's, ``source`` naming it) and of the flags
    ``argv``, flags winning. One path converts both: ``values`` are written as flags and parsed with
    ``argv`` after them, so ``learning_rate: 1e-3`` (which YAML reads as a string) becomes a float as
    ``--learning_rate 1e-3`` does. An unknown setting, a value of the wrong type or a missing required
    setting is a ``ValueError`` naming it (and the file) before anything is loaded."""
    values = dict(values or {})
    parser = _RaisingParser(set(values), source)
    parsed = parser.parse([*parser.flags(values), *(argv or [])])
    return RunConfig(**dict(zip(SETTINGS, parsed, strict=True)), given=given or {})


@dataclass
class RunResult:
    """What ``run`` returns: the content of ``results.json`` and where the fold models are."""

    output_dir: str
    results: dict

    @property
    def folds(self) -> list[dict]:
        return self.results["folds"]

    @property
    def mean(self) -> dict:
        return self.results["mean"]

    @property
    def std(self) -> dict:
        return self.results["std"]

    def model_dir(self, fold: int = 0) -> str:
        """The saved model (weights, feature extractor, card) of the ``fold``-th fold."""
        return os.path.join(self.output_dir, self.folds[fold]["fold"])


def build_losses(loss: LossSettings, mixup: float = 0.0):
    """(embedding_loss, classification_loss) for ADDTrainer."""
    if loss.loss not in TABLE2_LOSS_NAMES:
        names = f"{', '.join(TABLE2_LOSS_NAMES[:-1])} or {TABLE2_LOSS_NAMES[-1]}"
        raise ValueError(f"--loss must be {names}, got {loss.loss!r}")
    if loss.loss in ("focal", "opl") and mixup > 0:
        raise ValueError(f"--loss {loss.loss} needs class ids, but --mixup {mixup} makes soft labels")
    if len(loss.add_lambdas) != 4:
        raise ValueError(f"--add_lambdas takes 4 numbers (μp σp μn σn), got {loss.add_lambdas}")
    classification = FocalLoss(gamma=loss.focal_gamma) if loss.loss == "focal" else loss.classification_loss
    embedding = None
    if loss.loss == "add":
        mu_p, sigma_p, mu_n, sigma_n = loss.add_lambdas
        embedding = ADDLoss(
            mu_p, sigma_p, mu_n, sigma_n, lambda_mu=loss.add_lambda_mu, soft_mu=loss.add_soft_mu
        )
    elif loss.loss == "opl":
        embedding = OrthogonalProjectionLoss(gamma=loss.opl_gamma, weight=loss.opl_weight)
    return embedding, classification


def build_optimizer(model, schedule: ScheduleSettings, training: TrainingArguments, steps_per_epoch: int):
    """Adam or AdamW, with linear warm-up then a constant, cosine or per-epoch exponential learning rate."""
    optimizers = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}
    if schedule.optimizer not in optimizers:
        raise ValueError(f"--optimizer must be adam or adamw, got {schedule.optimizer!r}")
    optimizer = optimizers[schedule.optimizer](
        [p for p in model.parameters() if p.requires_grad],
        lr=training.learning_rate,
        betas=(training.adam_beta1, training.adam_beta2),
        weight_decay=training.weight_decay,
    )
    # --warmup_steps only for a stream, which has no epochs (check_config)
    warmup = training.warmup_steps or schedule.warmup_epochs * steps_per_epoch
    total = training.max_steps if training.max_steps > 0 else training.num_train_epochs * steps_per_epoch

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if schedule.lr_schedule == "cosine":
            return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1.0, total - warmup))))
        if schedule.lr_schedule == "exponential":
            return schedule.lr_decay ** ((step - warmup) // steps_per_epoch)
        return 1.0

    if schedule.lr_schedule not in ("constant", "cosine", "exponential"):
        raise ValueError(
            f"--lr_schedule must be constant, cosine or exponential, got {schedule.lr_schedule!r}"
        )
    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def is_stream(dataset) -> bool:
    return isinstance(dataset, StreamingClips)


def _limit(dataset, n: int | None):
    return dataset if n is None or n >= len(dataset) else dataset.select(range(n))


def run_fold(
    fold,
    spec: DatasetSpec,
    config: RunConfig,
    training: RunTrainingArguments,
    resume: str | None = None,
    trainer_class: Callable[..., ADDTrainer] = ADDTrainer,
) -> dict:
    """Train on one fold (from ``resume``, a checkpoint, if given) with ``trainer_class`` (ADDTrainer, a
    subclass that measures something, or a factory of one), save the final model, return its test metrics
    without ``test_``."""
    model_settings, augmentation, schedule = config.model, config.augmentation, config.schedule
    streaming = is_stream(fold.train)  # a stream's class ids are fixed by its class list
    fold = fold if streaming else keep_saved_class_order(fold, resume)
    multi_label = fold.train.multi_label if streaming else is_multi_label(fold.train)
    model, extractor, extractor_kwargs = load_model_and_extractor(
        model_settings.model_name_or_path, spec, fold.id2label, model_settings.ast_max_length, multi_label
    )
    collator = AudioClassificationCollator(
        extractor,
        num_labels=len(fold.id2label),
        audio_column=spec.audio_column,
        freq_mask=augmentation.freq_mask,
        time_mask=augmentation.time_mask,
        mixup=augmentation.mixup,
        mixup_alpha=augmentation.mixup_alpha,
        extractor_kwargs=extractor_kwargs,
        feature_device=feature_device(config),
    )
    if streaming:  # decoded in the loader workers; the collator computes the features there too
        train, test, validation = fold.train, fold.test, fold.validation
    else:  # features cached once where they can be, and only the columns the collator reads (no decoding)
        train = collator.prepare(_limit(fold.train, config.data.max_train_samples))
        test = collator.prepare(_limit(fold.test, config.data.max_eval_samples))
        validation = (
            None if fold.validation is None else _limit(fold.validation, config.data.max_eval_samples)
        )
        validation = collator.prepare(validation)
    world = training.per_device_train_batch_size * training.gradient_accumulation_steps * training.world_size
    steps_per_epoch = 1 if streaming else max(1, math.ceil(len(train) / world))  # a stream has no epochs
    embedding_loss, classification_loss = build_losses(config.loss, augmentation.mixup)
    trainer = trainer_class(
        model=model,
        args=training,
        train_dataset=train,
        eval_dataset=validation if validation is not None else test,
        processing_class=extractor,
        data_collator=collator,
        callbacks=[AugmentationSwitch(collator)],
        optimizers=build_optimizer(model, schedule, training, steps_per_epoch),
        embedding_loss=embedding_loss,
        classification_loss=classification_loss,
        samples_per_class=config.data.samples_per_class,
    )
    trainer.train(resume_from_checkpoint=resume)
    trainer.save_model()
    metrics = trainer.evaluate(test, metric_key_prefix="test")
    metrics = {key.removeprefix("test_"): value for key, value in metrics.items()}
    windows = [logs["positive_pairs"] for logs in trainer.state.log_history if "positive_pairs" in logs]
    metrics["train_positive_pairs"] = statistics.fmean(windows) if windows else None  # per batch
    dataset_id, dataset_name = card_dataset(spec)
    trainer.create_model_card(  # the saved model directory carries its card, ready for `hf-add push`
        finetuned_from=None
        if model_settings.model_name_or_path in NAMED_CONFIGS
        else model_settings.model_name_or_path,
        dataset_tags=dataset_id,
        dataset=dataset_name,
        results=card_results(
            metrics, protocol=f"test split {fold.name!r}" + (f": {spec.test_set}" if spec.test_set else "")
        ),
        hyperparameters={
            "optimizer": schedule.optimizer,
            "lr_scheduler": None,  # Trainer's own schedule is not used: the recipe's is stated instead
            "warmup": None,
            "lr_schedule": f"{schedule.warmup_epochs:g} warm-up epochs, then {schedule.lr_schedule}",
            "mixup": augmentation.mixup or None,
            "samples_per_class": config.data.samples_per_class,
            "specaugment": f"freq {augmentation.freq_mask}, time {augmentation.time_mask}"
            if augmentation.freq_mask or augmentation.time_mask
            else None,
        },
    )
    return metrics


# The result each fold reports first: accuracy, or mAP for multi-label data.
HEADLINE_METRICS = ("accuracy", "map")


def summarize(per_fold: list[dict]) -> tuple[dict, dict]:
    """Mean and sample standard deviation (n - 1) of accuracy and geometry summaries over folds; the std of
    one fold, and any statistic with an undefined (null) value, is null."""
    keys = [*HEADLINE_METRICS, "macro_f1", "micro_f1", *GEOMETRY_SUMMARIES, *REPORTED_METRICS]
    values = {k: [fold.get(k) for fold in per_fold] for k in keys if k in per_fold[0]}
    mean, std = {}, {}
    for key, column in values.items():
        defined = None not in column and all(math.isfinite(v) for v in column)
        mean[key] = statistics.fmean(column) if defined else None
        std[key] = statistics.stdev(column) if defined and len(column) > 1 else None
    return mean, std


FOLD_RESULTS = "fold_results.json"  # in a fold's directory once its model, card and test metrics are saved


def complete_checkpoints(directory: str) -> list[str]:
    """The fold's ``checkpoint-N`` directories that were fully written (a killed save has no trainer state),
    oldest first."""
    if not os.path.isdir(directory):
        return []
    found = []
    for name in os.listdir(directory):
        path = os.path.join(directory, name)
        if (
            name.startswith("checkpoint-")
            and name[11:].isdigit()
            and os.path.isfile(os.path.join(path, "trainer_state.json"))
        ):
            found.append((int(name[11:]), path))
    return [path for _, path in sorted(found)]


def plan_reruns(
    base_dir: str, fold_names: list[str], resume: str | None, overwrite: bool
) -> dict[str, str | None]:
    """Per fold: "done" (results kept), a checkpoint to resume from, or None (train from the start).

    A finished or interrupted run in ``base_dir`` is never silently overwritten: without
    ``--resume_from_checkpoint`` (``true``: each fold continues from its last complete checkpoint and finished
    folds are kept; or one fold's ``checkpoint-N`` directory) or ``--overwrite_output_dir``, it is refused.
    """
    fold_dirs = {name: os.path.join(base_dir, name) for name in fold_names}
    previous = [
        path
        for path in [os.path.join(base_dir, "results.json")]
        + [os.path.join(d, FOLD_RESULTS) for d in fold_dirs.values()]
        if os.path.isfile(path)
    ] + [c for d in fold_dirs.values() for c in complete_checkpoints(d)]
    if overwrite:
        for path in previous:
            shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)
        return dict.fromkeys(fold_names)
    if resume is None:
        if previous:
            raise ValueError(
                f"{base_dir} already holds a run ({len(previous)} results/checkpoints, e.g. {previous[0]}). Pass "
                "--resume_from_checkpoint true to continue it (finished folds are kept), or "
                "--overwrite_output_dir true to start over."
            )
        return dict.fromkeys(fold_names)
    plan = {
        name: "done"
        if os.path.isfile(os.path.join(d, FOLD_RESULTS))
        else (complete_checkpoints(d) or [None])[-1]
        for name, d in fold_dirs.items()
    }
    if resume.lower() in ("true", "1", "yes"):
        return plan
    checkpoint = os.path.abspath(resume)
    owner = [name for name, d in fold_dirs.items() if os.path.dirname(checkpoint) == os.path.abspath(d)]
    if not owner or not os.path.isfile(os.path.join(checkpoint, "trainer_state.json")):
        raise ValueError(
            f"--resume_from_checkpoint {resume} is not a complete checkpoint of this run's folds (checkpoint-N "
            f"directories with trainer_state.json under {sorted(fold_dirs.values())}); pass one of those, or "
            "true for each fold's last one."
        )
    plan[owner[0]] = checkpoint
    return plan


RUN_ARGUMENTS = "arguments.json"  # written before training; a resumed run must have the same
# skip_corrupt may be turned on to go on past a bad clip: a run without it stopped at the first, so the clips
# it trained on are those the run with it would have trained on.
NOT_COMPARED = {"resume_from_checkpoint", "overwrite_output_dir", "skip_corrupt"}


def check_same_arguments(path: str, arguments: dict) -> None:
    """A resumed run continues the one that was started: refuse other arguments, naming them.

    Settings are compared by name whatever group they were saved under (every name is one flag)."""
    if not os.path.isfile(path):
        return
    with open(path) as f:
        saved = {key: value for values in json.load(f).values() for key, value in values.items()}
    current = json.loads(json.dumps(arguments, default=str))  # as written (strict JSON, NaN -> null)
    changed = [
        f"--{key}: {saved.get(key)!r} then, {value!r} now"
        for values in current.values()
        for key, value in values.items()
        if key not in NOT_COMPARED and saved.get(key) != value
    ]
    if changed:
        raise ValueError(
            f"--resume_from_checkpoint continues the run in {os.path.dirname(path)}, which was started with other "
            f"arguments ({'; '.join(changed[:8])}). Resume with the same arguments, or start over with "
            "--overwrite_output_dir true."
        )


def feature_device(config: RunConfig) -> torch.device | None:
    """``--feature_device``: None (features on the CPU, in the loader), or the device, with the training process's
    own index where none is given (``cuda`` is ``cuda:LOCAL_RANK`` under torchrun)."""
    if config.data.feature_device is None:
        return None
    try:
        device = torch.device(config.data.feature_device)
    except RuntimeError as error:
        raise ValueError(
            f"--feature_device {config.data.feature_device!r} is not a device ({error})"
        ) from None
    training_device = config.training.device
    return training_device if device.index is None and device.type == training_device.type else device


def check_feature_device(config: RunConfig) -> None:
    """Refuse a ``--feature_device`` that the data loader or the training device cannot work with."""
    device = feature_device(config)
    if device is None or device.type == "cpu":
        return
    flag = f"--feature_device {config.data.feature_device}"
    if config.training.dataloader_num_workers > 0:
        raise ValueError(
            f"{flag} computes features in the collator, on the device, which DataLoader worker processes cannot "
            f"use (CUDA does not work in forked processes): leave out --dataloader_num_workers "
            f"{config.training.dataloader_num_workers} (the clips are then decoded before training, or with "
            "--streaming in the training process), or --feature_device."
        )
    if device.type != config.training.device.type:
        raise ValueError(
            f"{flag}, but the model trains on {config.training.device.type} (--use_cpu, or no {device.type} device "
            f"here): give --feature_device {config.training.device.type}, or leave it out."
        )


def _require(flag: str, value: Any, ok: bool, allowed: str) -> None:
    if not ok:
        raise ValueError(f"--{flag} must be {allowed}, got {value!r}")


def _number_at_least(flag: str, value: float, low: float, strict: bool = False, note: str = "") -> None:
    ok = value is not None and math.isfinite(value) and (value > low if strict else value >= low)
    _require(flag, value, ok, f"{'>' if strict else '≥'} {low:g} and finite{note}")


def _one_of(flag: str, value: str, choices: tuple[str, ...]) -> None:
    _require(flag, value, value in choices, "one of " + "|".join(choices))


AST_PATCH_FRAMES = 16  # an AST input holds at least one 16 x 16 patch


def model_input_size(model_name_or_path: str) -> tuple[int | None, int | None]:
    """(mel bins, AST input frames) of a named config or a local checkpoint's config.json; None where that
    cannot be known without loading it (a Hub id; BEATs' frames follow its clips)."""
    if model_name_or_path in NAMED_CONFIGS:
        return 128, None
    path = os.path.join(model_name_or_path, "config.json")
    if not os.path.isfile(path):
        return None, None
    with open(path) as f:
        saved = json.load(f)
    return saved.get("num_mel_bins"), saved.get("max_length")


def check_config(config: RunConfig) -> None:
    """Refuse, before anything is loaded or written, settings that cannot work, each in one line naming the
    flag and the values it allows."""
    data, loss, augmentation, schedule, training = (
        config.data,
        config.loss,
        config.augmentation,
        config.schedule,
        config.training,
    )
    for name in ("max_train_samples", "max_eval_samples", "cv_folds", "preprocessing_num_workers"):
        value = getattr(data, name)
        if value is not None and value < 1:
            raise ValueError(f"--{name} must be at least 1 (or left out for all), got {value}")
    # the loss and its weights (the loss's name: build_losses, below)
    if loss.classification_loss is not None:  # None: ADDTrainer's default (ce, or bce for multi-label data)
        _one_of("classification_loss", loss.classification_loss, CLASSIFICATION_LOSS_NAMES)
    _one_of("add_soft_mu", loss.add_soft_mu, SOFT_MU_FORMS)
    if len(loss.add_lambdas) != 4:
        raise ValueError(f"--add_lambdas takes 4 numbers (μp σp μn σn), got {loss.add_lambdas}")
    for value in loss.add_lambdas:
        _number_at_least("add_lambdas", value, 0, note=" (each of the 4 weights λ)")
    for name in ("add_lambda_mu", "focal_gamma", "opl_gamma", "opl_weight"):
        _number_at_least(name, getattr(loss, name), 0)
    # augmentation, within the model's input
    mixup = augmentation.mixup
    _require("mixup", mixup, math.isfinite(mixup) and 0 <= mixup <= 1, "in [0, 1] (a probability)")
    _number_at_least(
        "mixup_alpha", augmentation.mixup_alpha, 0, strict=True, note=" (λ ~ Beta(alpha, alpha))"
    )
    mel_bins, _ = model_input_size(config.model.model_name_or_path)
    frames = config.model.ast_max_length or (data.spec().ast_max_length if data.dataset else None)
    for name, size, unit in (("freq_mask", mel_bins, "mel bins"), ("time_mask", frames, "input frames")):
        value = getattr(augmentation, name)
        bound = f" and at most the model's {size} {unit}" if size else ""
        _require(name, value, value >= 0 and (size is None or value <= size), f"≥ 0{bound}")
    if config.model.ast_max_length is not None:
        _require(
            "ast_max_length",
            config.model.ast_max_length,
            config.model.ast_max_length >= AST_PATCH_FRAMES,
            f"at least {AST_PATCH_FRAMES} frames (one AST patch), or left out to fit the clips",
        )
    # batches and the schedule
    for name in ("per_device_train_batch_size", "per_device_eval_batch_size", "gradient_accumulation_steps"):
        _require(name, getattr(training, name), getattr(training, name) >= 1, "at least 1")
    if data.samples_per_class is not None:
        k, batch = data.samples_per_class, training.per_device_train_batch_size
        _require("samples_per_class", k, k >= 2, "at least 2 (one sample per class gives no positive pair)")
        _require(
            "samples_per_class",
            k,
            batch % k == 0,
            f"a divisor of --per_device_train_batch_size {batch} (a batch holds whole classes; e.g. "
            f"batch size {max(batch // k, 1) * k})",
        )
    check_balanced_batches(data.samples_per_class, mixup)
    # 0 is allowed: it keeps the weights (a frozen baseline, a test that the head is new)
    _number_at_least("learning_rate", training.learning_rate, 0)
    _number_at_least("weight_decay", training.weight_decay, 0)
    if training.max_steps <= 0:
        _number_at_least(
            "num_train_epochs", training.num_train_epochs, 0, strict=True, note=" (or set --max_steps)"
        )
    _one_of("optimizer", schedule.optimizer, ("adam", "adamw"))
    _one_of("lr_schedule", schedule.lr_schedule, ("constant", "cosine", "exponential"))
    _number_at_least("warmup_epochs", schedule.warmup_epochs, 0)
    decay = schedule.lr_decay
    _require("lr_decay", decay, math.isfinite(decay) and 0 < decay <= 1, "in (0, 1] (the factor per epoch)")
    check_feature_device(config)
    if training.warmup_steps and not data.streaming:
        raise ValueError(
            "hf-add train sets the learning-rate schedule itself: use --warmup_epochs instead of --warmup_steps "
            "(steps are for --streaming true, which has no epochs)"
        )
    if data.streaming:
        check_streaming(config)
    build_losses(loss, mixup)
    check_model_location(config.model.model_name_or_path)


# What a stream cannot do, and why (hf-add train --streaming true).
NOT_STREAMED = {
    "fold_column": "cross-validation reads every clip of a split to cut it into folds",
    "fold_splits": "leave-one-split-out folds join whole splits",
    "split_column": "splitting by a column reads the whole dataset first",
    "samples_per_class": "class-balanced batches pick clips by class and index, which a stream cannot; leave it "
    "out (ADD then uses the positive pairs that random batches hold: see positive_pairs in the logs)",
    "preprocessing_num_workers": "a stream is decoded in the DataLoader workers: use --dataloader_num_workers",
}


def check_streaming(config: RunConfig) -> None:
    """Refuse what ``--streaming true`` cannot do, saying what to use instead."""
    data, schedule = config.data, config.schedule
    for name, why in NOT_STREAMED.items():
        if getattr(data, name):
            raise ValueError(f"--streaming true cannot be used with --{name}: {why}")
    if config.training.max_steps <= 0:
        raise ValueError(
            "--streaming true reads a stream, whose length is not known: give --max_steps (the run's optimizer "
            "steps; one pass over N training clips is N / (batch size x accumulation x processes) steps)"
        )
    by_epoch = [
        f"--{name} epoch"
        for name in ("eval_strategy", "save_strategy", "logging_strategy")
        if getattr(config.training, name) == "epoch"
    ]
    if by_epoch:
        raise ValueError(
            f"--streaming true has no epochs, so {', '.join(by_epoch)} would act once, at the end of the run: use "
            "steps (e.g. --save_strategy steps --save_steps 500)"
        )
    if schedule.warmup_epochs > 0 or schedule.lr_schedule == "exponential":
        raise ValueError(
            "--streaming true has no epochs to count, so --warmup_epochs and --lr_schedule exponential (per epoch) "
            "cannot be used: use --warmup_steps N and --lr_schedule constant or cosine (over --max_steps)"
        )
    steps = config.training.warmup_steps
    _require(
        "warmup_steps",
        steps,
        float(steps).is_integer() and 0 <= steps < config.training.max_steps,
        f"a whole number of steps, below --max_steps {config.training.max_steps}",
    )
    _number_at_least("shuffle_buffer_size", data.shuffle_buffer_size, 0)


@contextlib.contextmanager
def preprocessing_first(training: TrainingArguments):
    """Load, decode, check and compute features once per machine, not once per process.

    Process 0 goes first, alone, and fills the datasets cache. Then the first process of each other node: where
    the cache is shared with node 0 (a shared file system), datasets finds process 0's files by their
    fingerprints and reads them, writing nothing; where each node has its own cache, it fills its node's. The
    other processes go last and read their node's cache. So no two processes ever write a cache file at the
    same time, whether or not the nodes share a disk. Every process takes the same two barriers, also when
    preprocessing fails: the others then meet the same error reading the cache.
    """
    with (
        training.main_process_first(local=False, desc="preprocessing"),
        training.main_process_first(local=True, desc="preprocessing"),
    ):
        yield


def run(config: RunConfig, trainer_class: Callable[..., ADDTrainer] = ADDTrainer) -> RunResult:
    """Run every fold of the protocol and write ``results.json``.

    The run holds ``output_dir``'s lock throughout (``hf_add.run_lock``; taken by the world's process 0): a
    second run into the directory is refused at once. Everything that can be checked is checked before
    anything is written: settings, the model location, the output directory (see ``plan_reruns``), every
    clip (``make_folds``). ``trainer_class`` is ADDTrainer, a subclass, or any callable taking ADDTrainer's
    arguments (e.g. a ``functools.partial``).
    """
    check_config(config)
    training = config.training
    with run_lock(training.output_dir) if training.process_index == 0 else contextlib.nullcontext():
        if training.world_size > 1:  # the other processes go on once process 0 holds the lock
            torch.distributed.barrier()
        with disk_full_named(training.output_dir):
            return _run(config, trainer_class)


DISK_FULL_SIGNS = ("unexpected pos", "PytorchStreamWriter failed", "No space left", "os error 28", "code: 28")


@contextlib.contextmanager
def disk_full_named(directory: str):
    """A full disk as the ``OSError`` (ENOSPC) it is: torch.save says ``RuntimeError: [enforce fail at
    inline_container.cc] unexpected pos``, safetensors ``SafetensorError: ... os error 28``."""
    try:
        yield
    except OSError:
        raise
    except Exception as error:
        if not any(sign in str(error) for sign in DISK_FULL_SIGNS):
            raise
        raise OSError(
            errno.ENOSPC, f"{os.strerror(errno.ENOSPC)} ({type(error).__name__})", directory
        ) from error


def last_checkpoint(output_dir: str) -> str | None:
    """The run's most recently written complete checkpoint (over its folds' directories), if any."""
    found = [
        checkpoint
        for name in (sorted(os.listdir(output_dir)) if os.path.isdir(output_dir) else [])
        for checkpoint in complete_checkpoints(os.path.join(output_dir, name))
    ]
    return max(
        found, key=lambda path: os.path.getmtime(os.path.join(path, "trainer_state.json")), default=None
    )


@dataclass
class InputLength:
    """The model's input length and what it does to the run's clips: how many are longer and cut."""

    seconds: float  # the longest input; longer clips are cut to it
    frames: int | None  # AST input frames (10 ms each); None for models that pad to the longest clip
    rule: str  # where the length comes from
    clips: int | None  # None: a stream, whose clips are not measured
    cut: int
    longest: float  # seconds

    def describe(self) -> str:
        size = (
            f"{self.frames} frames ({self.seconds:.2f} s)" if self.frames else f"up to {self.seconds:.2f} s"
        )
        if self.clips is None:
            effect = "longer clips are cut (a stream's clips are not measured)"
        elif self.cut:
            effect = f"{self.cut} of {self.clips} clips are longer and are cut (longest {self.longest:.1f} s)"
        else:
            effect = f"no clip is cut (longest {self.longest:.2f} s)"
        return f"input {size}, {self.rule}: {effect}"


AST_DEFAULT_MAX_LENGTH = 1024  # ASTConfig's, which the named configs use


def ast_frames(samples: np.ndarray | int) -> np.ndarray | int:
    """Kaldi fbank frames of clips of ``samples`` at 16 kHz: 25 ms windows every 10 ms."""
    return np.maximum(1 + (np.asarray(samples) - 400) // 160, 1)


def fit_input_length(config: RunConfig, spec: DatasetSpec, samples: np.ndarray | None) -> InputLength:
    """The input length of the run: ``--ast_max_length`` if given, else a preset's protocol length (ESC-50
    512, ...), else the longest clip in frames capped by the checkpoint's ``max_length`` (AST); BEATs takes
    clips up to the spec's ``max_seconds``. ``samples``: every clip's length at 16 kHz, or None for a stream
    (then the AST length is the checkpoint's ``max_length``)."""
    name = config.model.model_name_or_path
    if samples is None:
        samples, clips = np.zeros(0, dtype=np.int64), None
    else:
        clips = len(samples)
    longest = float(samples.max()) / SAMPLING_RATE if len(samples) else 0.0
    if name not in NAMED_CONFIGS and model_type_of(name) != "ast":
        cut = int((samples > spec.max_seconds * SAMPLING_RATE).sum())
        return InputLength(spec.max_seconds, None, "the dataset's longest input", clips, cut, longest)
    if config.model.ast_max_length:
        frames, rule = config.model.ast_max_length, "--ast_max_length"
    elif config.data.dataset:
        frames, rule = spec.ast_max_length, f"the {config.data.dataset} protocol's"
    else:
        cap = AST_DEFAULT_MAX_LENGTH if name in NAMED_CONFIGS else model_input_size(name)[1]
        cap = cap or AST_DEFAULT_MAX_LENGTH
        needed = int(ast_frames(samples.max())) if len(samples) else cap
        frames = max(AST_PATCH_FRAMES, min(needed, cap))
        rule = "the longest clip" + (f", capped at the model's {cap}" if needed > cap else "")
        if clips is None:
            rule = "the model's max_length (pass --ast_max_length to fit a stream's clips)"
    cut = int((ast_frames(samples) > frames).sum())
    return InputLength(frames / 100, frames, rule, clips, cut, longest)


def clip_samples(splits: Mapping[str, Any]) -> np.ndarray:
    """Every clip's length in samples, over decoded splits (their ``waveform`` column)."""
    lengths = [
        pc.list_value_length(dataset.with_format("arrow")[WAVEFORM_COLUMN]).to_numpy()
        for dataset in splits.values()
        if WAVEFORM_COLUMN in dataset.column_names
    ]
    return np.concatenate(lengths) if lengths else np.zeros(0, dtype=np.int64)


def training_steps(training: TrainingArguments, train_clips: int) -> int:
    """The optimizer steps of one fold's training on ``train_clips`` clips, as Trainer counts them."""
    if training.max_steps > 0:
        return training.max_steps
    batches = math.ceil(train_clips / (training.per_device_train_batch_size * training.world_size))
    return max(
        1, math.ceil(training.num_train_epochs * math.ceil(batches / training.gradient_accumulation_steps))
    )


TRAINER_LOGGING_STEPS = 500  # TrainingArguments' default: no training loss at all in a 75-step run
LOGS_PER_RUN = 20


def default_logging_steps(training: TrainingArguments, steps: int) -> float:
    """``logging_steps`` left at Trainer's default becomes a twentieth of the run (at least 1 step), so every run
    logs its training loss (and the no-positive-pair warning can fire) about 20 times."""
    if training.logging_strategy != "steps" or training.logging_steps != TRAINER_LOGGING_STEPS:
        return training.logging_steps
    return max(1, steps // LOGS_PER_RUN)


def describe_run_start(config, spec, folds, skipped, length, split_sizes) -> str:
    """The block logged when a run starts: data, classes, model, input length, batches, steps, output."""
    training, fold = config.training, folds[0]
    source = f"preset {config.data.dataset} ({spec.path})" if config.data.dataset else spec.path
    source += f", {spec.data_dir}" if spec.data_dir else ""
    if is_stream(fold.train):
        lines = describe_stream(config, fold, source)
        train_clips = 0
    else:
        lines = describe_cached_data(config, fold, folds, skipped, split_sizes, source)
        train_clips = min(len(fold.train), config.data.max_train_samples or len(fold.train))
    lines.append(f"model       {config.model.model_name_or_path}")
    lines.append(f"input       {length.describe().removeprefix('input ')}")
    effective = (
        training.per_device_train_batch_size * training.gradient_accumulation_steps * training.world_size
    )
    steps = training_steps(training, train_clips)
    logging_steps = default_logging_steps(training, steps)
    lines.append(
        f"batches     effective batch {effective} ({training.per_device_train_batch_size} per device x "
        f"{training.gradient_accumulation_steps} accumulation x {training.world_size} process(es))"
    )
    lines.append(f"steps       {steps} per fold ({fold.name}), training loss logged every {logging_steps:g}")
    lines.append(f"output      {training.output_dir}")
    return "\n".join(["run:", *(f"  {line}" for line in lines)])


def describe_stream(config: RunConfig, fold, source: str) -> list[str]:
    train = fold.train
    workers = max(config.training.dataloader_num_workers, 1)
    shards, readers = train.source.num_shards, workers * config.training.world_size
    split = "whole shards each" if shards % readers == 0 else "each reads every row, decodes every R-th"
    splits = ", ".join(
        name for name in (train.split, fold.validation and fold.validation.split, fold.test.split) if name
    )
    classes = fold.train.classes
    return [
        f"data        streaming {source}: splits {splits}; {shards} training shard(s) for {readers} reader(s) "
        f"({config.training.world_size} process(es) x {workers} loader worker(s): {split}); shuffle buffer "
        f"{config.data.shuffle_buffer_size}",
        f"classes     {len(classes)} ({', '.join(classes[:8])}{', ...' if len(classes) > 8 else ''})",
        "skipped     "
        + (
            "unusable clips are skipped and listed at the end (skipped_clips.json)"
            if config.data.skip_corrupt
            else "an unusable clip stops the run (--skip_corrupt skips and lists them)"
        ),
    ]


def describe_cached_data(config: RunConfig, fold, folds, skipped, split_sizes, source: str) -> list[str]:
    lines = [
        f"data        {source}: "
        + ", ".join(f"{name} {size}" for name, size in split_sizes.items())
        + " clips",
        f"folds       {len(folds)} ({', '.join(f.name for f in folds[:6])}{', ...' if len(folds) > 6 else ''});"
        f" {fold.name}: train {len(fold.train)}, "
        + (f"validation {len(fold.validation)}, " if fold.validation is not None else "")
        + f"test {len(fold.test)}",
    ]
    classes = list(fold.id2label.values())
    counts = _class_counts(fold.train, len(classes))
    per_class = f"; {min(counts)}-{max(counts)} training clips per class" if counts else ""
    shown = ", ".join(classes[:8]) + (", ..." if len(classes) > 8 else "")
    lines.append(f"classes     {len(classes)} ({shown}){per_class}")
    lines.append(
        f"skipped     {len(skipped)} unusable clip(s)" + (" (skipped_clips.json)" if skipped else "")
    )
    return lines


def _class_counts(dataset, num_classes: int) -> list[int]:
    """Clips per class; with multi-label data, the clips that carry each class."""
    if "labels" not in dataset.column_names:
        return []
    if not is_multi_label(dataset):
        return np.bincount(np.asarray(dataset["labels"]), minlength=num_classes).tolist()
    counts = np.zeros(num_classes, dtype=int)
    for ids in dataset["labels"]:
        counts[ids] += 1
    return counts.tolist()


SKIPPED_STREAM_CLIPS = "skipped_stream_clips"  # in a fold's directory: what each loader worker skipped


def gathered_stream_skips(base_dir: str, fold_names: list[str], training: TrainingArguments) -> list[dict]:
    """Every process's skipped clips, each once (the nodes need not share a disk)."""
    own = [
        clip
        for name in fold_names
        for clip in read_skipped_clips(
            os.path.join(base_dir, name, SKIPPED_STREAM_CLIPS), training.process_index
        )
    ]
    if training.world_size == 1:
        return own
    every: list[list[dict]] = [[] for _ in range(training.world_size)]
    torch.distributed.all_gather_object(every, own)
    unique = {(clip["split"], clip["file"]): clip for clips in every for clip in clips}
    return [unique[key] for key in sorted(unique)]


def check_time_mask(config: RunConfig, length: InputLength) -> None:
    if length.frames is not None and config.augmentation.time_mask > length.frames:
        raise ValueError(
            f"--time_mask must be ≥ 0 and at most the model's {length.frames} input frames ({length.rule}), "
            f"got {config.augmentation.time_mask}"
        )


def describe_run_end(base_dir: str, fold_names: list[str], skipped: int = 0) -> str:
    """The block logged when a run ends: where its models, cards and results are, and the clips skipped."""
    lines = [
        f"model {os.path.join(base_dir, name)} (card: {os.path.join(base_dir, name, 'README.md')})"
        for name in fold_names
    ]
    lines.append(f"results {os.path.join(base_dir, 'results.json')}")
    if skipped:
        lines.append(f"skipped {skipped} unusable clip(s): {os.path.join(base_dir, 'skipped_clips.json')}")
    return "\n".join(["run finished:", *(f"  {line}" for line in lines)])


def _run(config: RunConfig, trainer_class: Callable[..., ADDTrainer]) -> RunResult:
    training = config.training
    spec = config.data.spec()
    base_dir = training.output_dir
    fitted: dict[str, Any] = {}

    def measure(splits) -> None:  # the input length from the decoded clips, then their features with it
        length = fitted["length"] = fit_input_length(config, spec, clip_samples(splits))
        fitted["split_sizes"] = {name: len(dataset) for name, dataset in splits.items()}
        check_time_mask(config, length)
        extractor, extractor_kwargs = load_feature_extractor(
            config.model.model_name_or_path, spec, length.frames
        )
        features = fitted["features"] = AudioClassificationCollator(
            extractor, num_labels=0, extractor_kwargs=extractor_kwargs
        )
        if config.data.feature_device is not None and features.fbank is None:
            raise ValueError(
                f"--feature_device computes features with the batched fbank, which reproduces the AST and BEATs "
                f"extractors (16 kHz) only, not this {type(extractor).__name__}; leave --feature_device out."
            )

    num_proc = config.data.preprocessing_num_workers
    if config.data.streaming:  # nothing read before training: clips are decoded in the loader workers
        folds, skipped = (
            [
                stream_fold(
                    spec,
                    seed=training.data_seed if training.data_seed is not None else training.seed,
                    shuffle_buffer=config.data.shuffle_buffer_size,
                    skip_corrupt=config.data.skip_corrupt,
                    skipped_dir=os.path.join(base_dir, spec.test_split or "", SKIPPED_STREAM_CLIPS),
                    rank=training.process_index,
                    world_size=training.world_size,
                    max_train_samples=config.data.max_train_samples,
                    max_eval_samples=config.data.max_eval_samples,
                )
            ],
            [],
        )
        fitted["length"] = fit_input_length(config, spec, None)
        check_time_mask(config, fitted["length"])
        fitted["split_sizes"] = None
    else:
        with preprocessing_first(training):
            folds, skipped = make_folds(
                spec.load(),
                spec,
                config.data.cv_folds,
                config.data.skip_corrupt,
                prepare_split=lambda dataset: fitted["features"].cache_split(dataset, num_proc=num_proc),
                measure_splits=measure,
                num_proc=num_proc,
            )
    length = fitted["length"]
    fold_config = replace(config, model=replace(config.model, ast_max_length=length.frames))
    logger.info(describe_run_start(config, spec, folds, skipped, length, fitted["split_sizes"]))
    if training.load_best_model_at_end and any(fold.validation is None for fold in folds):
        raise ValueError(
            "--load_best_model_at_end would choose the model on the test split: this protocol has no validation "
            "split. Give one (--validation_split), or leave --load_best_model_at_end out."
        )
    if training.eval_strategy == "no" and folds[0].validation is not None:
        logger.warning(
            f"The validation split {spec.validation_split!r} is not used: pass --eval_strategy epoch (or steps) "
            "to evaluate on it during training."
        )
    plan = plan_reruns(
        base_dir,
        [fold.name for fold in folds],
        training.resume_from_checkpoint,
        training.overwrite_output_dir,
    )
    arguments = config.arguments()
    if training.resume_from_checkpoint and not training.overwrite_output_dir:
        check_same_arguments(os.path.join(base_dir, RUN_ARGUMENTS), arguments)
    write_json(arguments, os.path.join(base_dir, RUN_ARGUMENTS))
    if skipped:
        write_json(skipped, os.path.join(base_dir, "skipped_clips.json"))
    if feature_device(config) is not None and feature_device(config).type != "cpu":
        if training.dataloader_pin_memory:
            logger.info("Setting dataloader_pin_memory=False: batches come out of the collator on the device")
        training.dataloader_pin_memory = False
    if training.remove_unused_columns:
        logger.info("Setting remove_unused_columns=False: the collator reads the audio column")
        training.remove_unused_columns = False
    per_fold = []
    for fold in folds:
        fold_dir = os.path.join(base_dir, fold.name)
        if plan[fold.name] == "done":
            with open(os.path.join(fold_dir, FOLD_RESULTS)) as f:
                metrics = json.load(f)
            logger.info(f"{fold.name}: finished in an earlier run, results kept")
        else:
            set_seed(training.seed)
            train_clips = (
                0
                if is_stream(fold.train)
                else min(len(fold.train), config.data.max_train_samples or len(fold.train))
            )
            fold_args = replace(
                training,
                output_dir=fold_dir,
                resume_from_checkpoint=None,
                logging_steps=default_logging_steps(training, training_steps(training, train_clips)),
            )
            if config.data.streaming and plan[fold.name] is None:  # a fresh start lists only its own skips
                forget_skipped_clips(os.path.join(fold_dir, SKIPPED_STREAM_CLIPS), training.process_index)
            metrics = run_fold(fold, spec, fold_config, fold_args, plan[fold.name], trainer_class)
            write_json(metrics, os.path.join(fold_dir, FOLD_RESULTS))
        per_fold.append({"fold": fold.name, **metrics})
        headline = next(name for name in HEADLINE_METRICS if name in metrics)
        logger.info(f"{fold.name}: {headline} {metrics[headline]:.4f}")
    if config.data.streaming:  # the clips the workers skipped, known now that every stream was read
        skipped = gathered_stream_skips(base_dir, [fold.name for fold in folds], training)
        if skipped:
            write_json(skipped, os.path.join(base_dir, "skipped_clips.json"))
    mean, std = summarize(per_fold)
    results = {
        "recipe": config.schedule.recipe,
        # the input length the run used, not the spec's default
        "dataset": asdict(
            replace(spec, ast_max_length=length.frames or spec.ast_max_length, max_seconds=length.seconds)
        ),
        "test_set": spec.test_set,
        "class_names": list(folds[0].id2label.values()),
        "arguments": arguments,
        "num_skipped_clips": len(skipped),
        "skipped_clips": skipped,
        "folds": per_fold,
        "mean": mean,
        "std": std,
    }
    results = finite_or_null(results)  # what results.json holds: null, not NaN, for undefined values
    write_json(results, os.path.join(base_dir, "results.json"))
    logger.info(describe_run_end(base_dir, [fold.name for fold in folds], len(skipped)))
    return RunResult(output_dir=base_dir, results=results)
