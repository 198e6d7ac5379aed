"""Fine-tune AST / BEATs on an audio classification dataset with ADDTrainer, over the protocol's folds.

    python scripts/finetune.py --dataset esc50 --model_name_or_path MIT/ast-finetuned-audioset-10-10-0.4593 \
        --loss add --output_dir runs/esc50-add
    python scripts/finetune.py config.yaml          # the same arguments from a YAML or JSON file

Each fold's final model is saved in ``output_dir/<fold>`` with its feature extractor (so
``pipeline("audio-classification", model=dir)`` works); ``output_dir/results.json`` holds every fold's test
accuracy and embedding-geometry summaries, their mean and standard deviation.
"""

from __future__ import annotations

import logging
import math
import os
import sys
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import torch
from transformers import HfArgumentParser, TrainingArguments, set_seed

from hf_add.data import AudioClassificationCollator, AugmentationSwitch, get_spec, load_model_and_extractor
from hf_add.data.features import NAMED_CONFIGS
from hf_add.data.presets import DatasetSpec, card_dataset, make_folds
from hf_add.files import write_json
from hf_add.geometry import GEOMETRY_SUMMARIES
from hf_add.losses import ADDLoss, FocalLoss, OrthogonalProjectionLoss
from hf_add.trainer import ADDTrainer

logger = logging.getLogger(__name__)


@dataclass
class ModelArguments:
    model_name_or_path: str = field(
        metadata={
            "help": "Hub id or local directory of an AST / BEATs checkpoint, or ast-tiny|ast-small|ast-base "
            "to train an AST from scratch. The model type is read from the checkpoint's config."
        }
    )
    ast_max_length: int | None = field(
        default=None,
        metadata={"help": "AST input frames (default: the dataset preset's, e.g. 512 for ESC-50)."},
    )


@dataclass
class DataArguments:
    dataset: str | None = field(
        default=None, metadata={"help": "Preset with the paper's protocol: esc50|ks2|er."}
    )
    dataset_name: str | None = field(default=None, metadata={"help": "Any Hub dataset, or 'audiofolder'."})
    dataset_config_name: str | None = None
    dataset_revision: str | None = None
    data_dir: str | None = field(
        default=None, metadata={"help": "Local folder (with dataset_name audiofolder)."}
    )
    audio_column: str | None = None
    label_column: str | None = None
    label_names_column: str | None = None
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
    train_split: str | None = None
    validation_split: str | None = None
    test_split: str | None = None
    cv_folds: int | None = field(
        default=None, metadata={"help": "Run only the first n folds (default: all)."}
    )
    max_train_samples: int | None = None
    max_eval_samples: int | None = None
    skip_corrupt: bool = field(
        default=False, metadata={"help": "Skip (and count) clips that cannot be decoded."}
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
            fold_column=self.fold_column,
            fold_splits=tuple(self.fold_splits) if self.fold_splits else None,
            split_column=self.split_column,
            train_split=self.train_split,
            validation_split=self.validation_split,
            test_split=self.test_split,
        )


@dataclass
class LossArguments:
    loss: str = field(default="add", metadata={"help": "ce|focal|opl|add: the loss of Table 2."})
    add_lambdas: list[float] = field(
        default_factory=lambda: [1.0, 1.0, 1.0, 1.0], metadata={"help": "ADD weights λ (μp σp μn σn)."}
    )
    add_lambda_mu: float = field(default=1.0, metadata={"help": "ADD weight of L_μ (soft labels)."})
    focal_gamma: float = field(
        default=2.0, metadata={"help": "The ADD authors' code leaves γ at 0; we use 2."}
    )
    opl_gamma: float = field(
        default=2.0, metadata={"help": "OPL negative-pair weight (the ADD authors': 2)."}
    )
    opl_weight: float = field(
        default=0.1, metadata={"help": "Weight of OPL added to CE (the ADD authors': 0.1)."}
    )
    classification_loss: str = field(
        default="ce", metadata={"help": "ce|bce (sigmoid BCE, authors' mixup runs)."}
    )
    mixup: float = field(default=0.0, metadata={"help": "Probability of mixing a training sample."})
    mixup_alpha: float = field(default=10.0, metadata={"help": "λ ~ Beta(alpha, alpha)."})
    freq_mask: int = field(default=0, metadata={"help": "SpecAugment frequency mask width (bins)."})
    time_mask: int = field(default=0, metadata={"help": "SpecAugment time mask width (frames)."})


@dataclass
class RecipeArguments:
    optimizer: str = field(default="adamw", metadata={"help": "adamw|adam (Adam: L2 weight decay)."})
    warmup_epochs: float = 0.0
    lr_schedule: str = field(
        default="constant",
        metadata={"help": "After warm-up: constant|cosine|exponential (×lr_decay per epoch)."},
    )
    lr_decay: float = 0.85
    recipe: str = field(
        default="custom", metadata={"help": "Recorded in results.json (paper|authors|custom)."}
    )


ARGUMENT_CLASSES = (ModelArguments, DataArguments, LossArguments, RecipeArguments, TrainingArguments)


def build_losses(args: LossArguments):
    """(embedding_loss, classification_loss) for ADDTrainer."""
    if args.loss not in ("ce", "focal", "opl", "add"):
        raise ValueError(f"--loss must be ce, focal, opl or add, got {args.loss!r}")
    if args.loss in ("focal", "opl") and args.mixup > 0:
        raise ValueError(f"--loss {args.loss} needs class ids, but --mixup {args.mixup} makes soft labels")
    if len(args.add_lambdas) != 4:
        raise ValueError(f"--add_lambdas takes 4 numbers (μp σp μn σn), got {args.add_lambdas}")
    classification = FocalLoss(gamma=args.focal_gamma) if args.loss == "focal" else args.classification_loss
    embedding = None
    if args.loss == "add":
        mu_p, sigma_p, mu_n, sigma_n = args.add_lambdas
        embedding = ADDLoss(mu_p, sigma_p, mu_n, sigma_n, lambda_mu=args.add_lambda_mu)
    elif args.loss == "opl":
        embedding = OrthogonalProjectionLoss(gamma=args.opl_gamma, weight=args.opl_weight)
    return embedding, classification


def build_optimizer(model, recipe: RecipeArguments, training: TrainingArguments, steps_per_epoch: int):
    """Adam or AdamW, with linear warm-up then a constant, cosine or per-epoch exponential learning rate."""
    optimizers = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}
    if recipe.optimizer not in optimizers:
        raise ValueError(f"--optimizer must be adam or adamw, got {recipe.optimizer!r}")
    optimizer = optimizers[recipe.optimizer](
        [p for p in model.parameters() if p.requires_grad],
        lr=training.learning_rate,
        betas=(training.adam_beta1, training.adam_beta2),
        weight_decay=training.weight_decay,
    )
    warmup = recipe.warmup_epochs * steps_per_epoch
    total = training.max_steps if training.max_steps > 0 else training.num_train_epochs * steps_per_epoch

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if recipe.lr_schedule == "cosine":
            return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1.0, total - warmup))))
        if recipe.lr_schedule == "exponential":
            return recipe.lr_decay ** ((step - warmup) // steps_per_epoch)
        return 1.0

    if recipe.lr_schedule not in ("constant", "cosine", "exponential"):
        raise ValueError(f"--lr_schedule must be constant, cosine or exponential, got {recipe.lr_schedule!r}")
    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def _limit(dataset, n: int | None):
    return dataset if n is None or n >= len(dataset) else dataset.select(range(n))


def run_fold(fold, spec, model_args, data_args, loss_args, recipe, training) -> dict:
    """Train on one fold, save the final model, return its test metrics without the ``test_`` prefix."""
    model, extractor, extractor_kwargs = load_model_and_extractor(
        model_args.model_name_or_path, spec, fold.id2label, model_args.ast_max_length
    )
    collator = AudioClassificationCollator(
        extractor,
        num_labels=len(fold.id2label),
        audio_column=spec.audio_column,
        freq_mask=loss_args.freq_mask,
        time_mask=loss_args.time_mask,
        mixup=loss_args.mixup,
        mixup_alpha=loss_args.mixup_alpha,
        extractor_kwargs=extractor_kwargs,
    )
    train = _limit(fold.train, data_args.max_train_samples)
    test = _limit(fold.test, data_args.max_eval_samples)
    validation = _limit(fold.validation, data_args.max_eval_samples) if fold.validation is not None else None
    world = training.per_device_train_batch_size * training.gradient_accumulation_steps * training.world_size
    embedding_loss, classification_loss = build_losses(loss_args)
    trainer = ADDTrainer(
        model=model,
        args=training,
        train_dataset=train,
        eval_dataset=validation if validation is not None else test,
        processing_class=extractor,
        data_collator=collator,
        callbacks=[AugmentationSwitch(collator)],
        optimizers=build_optimizer(model, recipe, training, max(1, math.ceil(len(train) / world))),
        embedding_loss=embedding_loss,
        classification_loss=classification_loss,
    )
    trainer.train()
    trainer.save_model()
    metrics = trainer.evaluate(test, metric_key_prefix="test")
    metrics = {key.removeprefix("test_"): value for key, value in metrics.items()}
    dataset_id, dataset_name = card_dataset(spec)
    trainer.create_model_card(  # the saved model directory carries its card, ready for `hf-add push`
        finetuned_from=None
        if model_args.model_name_or_path in NAMED_CONFIGS
        else model_args.model_name_or_path,
        dataset_tags=dataset_id,
        dataset=dataset_name,
        results={
            "accuracy": metrics["accuracy"],
            "geometry": {name: metrics[name] for name in GEOMETRY_SUMMARIES if name in metrics},
            "protocol": f"test split {fold.name!r}" + (f": {spec.test_set}" if spec.test_set else ""),
        },
        hyperparameters={
            "optimizer": recipe.optimizer,
            "lr_schedule": f"{recipe.warmup_epochs:g} warm-up epochs, then {recipe.lr_schedule}",
            "mixup": loss_args.mixup or None,
            "specaugment": f"freq {loss_args.freq_mask}, time {loss_args.time_mask}"
            if loss_args.freq_mask or loss_args.time_mask
            else None,
        },
    )
    return metrics


def summarize(per_fold: list[dict]) -> tuple[dict, dict]:
    """Mean and (population) standard deviation of accuracy and geometry summaries over folds."""
    keys = ["accuracy", *GEOMETRY_SUMMARIES]
    values = {k: np.array([fold[k] for fold in per_fold], dtype=float) for k in keys if k in per_fold[0]}
    return {k: float(v.mean()) for k, v in values.items()}, {k: float(v.std()) for k, v in values.items()}


def run(model_args, data_args, loss_args, recipe, training) -> dict:
    """Run every fold of the protocol and write ``results.json``; returns its content."""
    spec = data_args.spec()
    folds, skipped = make_folds(spec.load(), spec, data_args.cv_folds, data_args.skip_corrupt)
    if training.remove_unused_columns:
        logger.info("Setting remove_unused_columns=False: the collator reads the audio column")
        training.remove_unused_columns = False
    base_dir, per_fold = training.output_dir, []
    for fold in folds:
        set_seed(training.seed)
        fold_args = replace(training, output_dir=os.path.join(base_dir, fold.name))
        metrics = run_fold(fold, spec, model_args, data_args, loss_args, recipe, fold_args)
        per_fold.append({"fold": fold.name, **metrics})
        logger.info(f"{fold.name}: accuracy {metrics['accuracy']:.4f}")
    mean, std = summarize(per_fold)
    results = {
        "recipe": recipe.recipe,
        "dataset": asdict(spec),
        "test_set": spec.test_set,
        "arguments": {
            "model": asdict(model_args),
            "data": asdict(data_args),
            "loss": asdict(loss_args),
            "recipe": asdict(recipe),
            "training": training.to_dict(),
        },
        "skipped_clips": skipped,
        "folds": per_fold,
        "mean": mean,
        "std": std,
    }
    write_json(results, os.path.join(base_dir, "results.json"))
    return results


def parse_args(argv: list[str] | None = None, values: dict | None = None):
    """The five argument dataclasses, from ``values``, a single .yaml/.json file, or command-line flags."""
    parser = HfArgumentParser(ARGUMENT_CLASSES)
    argv = sys.argv[1:] if argv is None and values is None else argv
    if values is not None:
        return parser.parse_dict(values)
    if len(argv) == 1 and argv[0].endswith((".yaml", ".yml")):
        return parser.parse_yaml_file(argv[0])
    if len(argv) == 1 and argv[0].endswith(".json"):
        return parser.parse_json_file(argv[0])
    return parser.parse_args_into_dataclasses(argv)


def main(argv: list[str] | None = None) -> dict:
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    return run(*parse_args(argv))


if __name__ == "__main__":
    main()
