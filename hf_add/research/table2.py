"""One cell of the paper's Table 2 (accuracy, mean ± std over seeds) with Table 1's hyperparameters.

    hf-add reproduce --dataset esc50 --model ast --loss add --seeds 3
    hf-add reproduce --dataset ks2 --model beats --loss ce \
        --beats_checkpoint checkpoints/beats-iter3-as2m --recipe authors --dry_run

Two recipes: ``paper`` is Table 1 as printed; ``authors`` follows the YAML configs of the authors' repository
(antonioalmudevar/distance_distribution_loss, configs/base), which differ (see RECIPES). Focal loss and OPL
have no KS2 cells: KS2 uses mixup, whose soft labels these losses do not take, so 20 cells exist
(3 datasets × 2 models × 4 losses, minus 2 models × 2 losses on KS2).

BEATs has no official Hub repository: convert the official checkpoint (BEATs_iter3+ AS2M) with
``hf-add convert-beats`` and pass the directory as ``--beats_checkpoint``.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
from dataclasses import asdict, dataclass, field

from transformers import HfArgumentParser

from hf_add.files import write_json
from hf_add.losses.registry import TABLE2_LOSS_NAMES
from hf_add.runs import RunConfig, run

HELP = "one cell of the paper's Table 2 (dataset x model x loss, several seeds)"

AST_CHECKPOINT = "MIT/ast-finetuned-audioset-10-10-0.4593"
DATASETS = ("esc50", "ks2", "er")
MODELS = ("ast", "beats")
LOSSES = TABLE2_LOSS_NAMES
CELLS = [
    (d, m, loss)
    for d in DATASETS
    for m in MODELS
    for loss in LOSSES
    if not (d == "ks2" and loss in ("focal", "opl"))
]


def _per_dataset(esc50, ks2, er) -> dict:
    return {"esc50": esc50, "ks2": ks2, "er": er}


# Hyperparameters per (recipe, model), each either one value or a per-dataset dict.
RECIPES = {
    "paper": {  # Table 1 as printed in the paper.
        "ast": {
            "window": "hanning",
            "freq_mask": _per_dataset(24, 48, 24),
            "time_mask": _per_dataset(96, 48, 96),
            "mixup": _per_dataset(0.0, 0.5, 0.0),
            "epochs": 25,
            "batch_size": 32,
            "optimizer": "adamw",
            "learning_rate": _per_dataset(7e-4, 6e-5, 7e-4),
            "betas": (0.9, 0.98),
            "weight_decay": 1e-2,
            "warmup_epochs": 0,
            "lr_schedule": "constant",
            "classification_loss": "ce",
        },
        "beats": {
            "window": "povey",
            "freq_mask": 0,
            "time_mask": 0,
            "mixup": _per_dataset(0.0, 0.5, 0.0),
            "epochs": 30,
            "batch_size": 16,
            "optimizer": "adam",
            "learning_rate": _per_dataset(8e-6, 1e-4, 8e-6),
            "betas": (0.95, 0.999),
            "weight_decay": 5e-6,
            "warmup_epochs": 0,
            "lr_schedule": "constant",
            "classification_loss": "ce",
        },
    },
    # The authors' configs: Table 1's optimizer / betas / weight-decay rows appear swapped between the models,
    # the AST learning rate is 6.7e-6 (not 7e-4), there are schedules, and soft-label (mixup) runs use BCE.
    "authors": {
        "ast": {
            "window": "hanning",
            "freq_mask": _per_dataset(24, 48, 24),
            "time_mask": _per_dataset(96, 48, 96),
            "mixup": _per_dataset(0.0, 0.5, 0.0),
            "epochs": _per_dataset(25, 30, 25),
            "batch_size": 32,
            "optimizer": "adam",
            "learning_rate": _per_dataset(6.7e-6, 6.25e-5, 6.7e-6),
            "betas": (0.95, 0.999),
            "weight_decay": 5e-6,
            "warmup_epochs": 5,
            "lr_schedule": "exponential",  # ×0.85 every epoch from epoch 5
            "classification_loss": _per_dataset("ce", "bce", "ce"),
        },
        "beats": {
            "window": _per_dataset("povey", "povey", "hanning"),
            "freq_mask": 0,
            "time_mask": 0,
            "mixup": _per_dataset(0.0, 0.5, 0.0),
            "epochs": _per_dataset(25, 30, 25),
            "batch_size": 16,
            "optimizer": "adamw",
            "learning_rate": _per_dataset(8e-6, 1e-4, 8e-6),
            "betas": (0.9, 0.98),
            "weight_decay": 1e-2,
            "warmup_epochs": 5,
            "lr_schedule": _per_dataset("cosine", "constant", "cosine"),
            "classification_loss": _per_dataset("ce", "bce", "ce"),
        },
    },
}

NOTES = [
    "OPL as the ADD authors ran it: gamma = 2, |cos| per negative pair, the whole loss weighted 0.1.",
    "Focal loss: the authors' code leaves gamma at 0 (plain cross-entropy); we use gamma = 2.",
    "The authors' soft-label (mixup) runs use sigmoid BCE; recipe 'paper' keeps cross-entropy.",
    "Focal and OPL have no KS2 cells (mixup makes soft labels they do not take): 20 cells in all.",
]


@dataclass
class Table2Arguments:
    dataset: str = field(metadata={"help": "esc50|ks2|er"})
    model: str = field(metadata={"help": "ast|beats"})
    loss: str = field(metadata={"help": "ce|focal|opl|add"})
    seeds: int = field(default=3, metadata={"help": "Runs with seeds 0..n-1; the cell is their mean ± std."})
    recipe: str = field(
        default="paper", metadata={"help": "paper (Table 1 as printed) | authors (their configs)"}
    )
    beats_checkpoint: str | None = field(
        default=None, metadata={"help": "Directory of a converted BEATs checkpoint (no official Hub repo)."}
    )
    data_dir: str | None = field(
        default=None,
        metadata={"help": "ks2: the extracted speech_commands_v0.02 archive, for the paper's test set."},
    )
    output_dir: str | None = field(
        default=None, metadata={"help": "Default runs/table2/<dataset>-<model>-..."}
    )
    dry_run: bool = field(default=False, metadata={"help": "Print the configuration and exit."})


def hyperparameters(dataset: str, model: str, recipe: str) -> dict:
    """Table 1's row values for one dataset / model under a recipe."""
    table = RECIPES[recipe][model]
    return {key: value[dataset] if isinstance(value, dict) else value for key, value in table.items()}


def cell_configuration(args: Table2Arguments, seed: int = 0) -> dict:
    """The settings of one run of the cell (``RunConfig.from_values`` takes them)."""
    if (args.dataset, args.model, args.loss) not in CELLS:
        raise ValueError(
            f"No Table 2 cell for {args.dataset}/{args.model}/{args.loss}: Focal and OPL are not run on KS2 "
            "(mixup soft labels). Cells: datasets esc50|ks2|er, models ast|beats, losses ce|focal|opl|add."
        )
    if args.recipe not in RECIPES:
        raise ValueError(f"--recipe must be one of {sorted(RECIPES)}, got {args.recipe!r}")
    h = hyperparameters(args.dataset, args.model, args.recipe)
    checkpoint = AST_CHECKPOINT if args.model == "ast" else args.beats_checkpoint or "<--beats_checkpoint>"
    output_dir = args.output_dir or f"runs/table2/{args.dataset}-{args.model}-{args.loss}-{args.recipe}"
    return {
        "model_name_or_path": checkpoint,
        "dataset": args.dataset,
        "loss": args.loss,
        "classification_loss": h["classification_loss"],
        "mixup": h["mixup"],
        "freq_mask": h["freq_mask"],
        "time_mask": h["time_mask"],
        "optimizer": h["optimizer"],
        "warmup_epochs": h["warmup_epochs"],
        "lr_schedule": h["lr_schedule"],
        "recipe": args.recipe,
        "output_dir": os.path.join(output_dir, f"seed{seed}"),
        "num_train_epochs": h["epochs"],
        "per_device_train_batch_size": h["batch_size"],
        "per_device_eval_batch_size": h["batch_size"],
        "learning_rate": h["learning_rate"],
        "adam_beta1": h["betas"][0],
        "adam_beta2": h["betas"][1],
        "weight_decay": h["weight_decay"],
        "seed": seed,
        "save_strategy": "no",
        "report_to": "none",
        **({"data_dir": args.data_dir} if args.data_dir else {}),
    }


def main(argv: list[str] | None = None) -> dict:
    (args,) = HfArgumentParser(Table2Arguments, prog="hf-add reproduce").parse_args_into_dataclasses(
        sys.argv[1:] if argv is None else argv
    )
    configs = [cell_configuration(args, seed) for seed in range(args.seeds)]
    h = hyperparameters(args.dataset, args.model, args.recipe)
    notes = list(NOTES)
    if args.dataset == "ks2" and not args.data_dir:
        notes.append(
            "KS2 from the Hub copy: its test split is not the paper's; --data_dir takes the archive."
        )
    if args.model == "beats" and h["window"] != "povey":
        notes.append(
            f"BeatsFeatureExtractor computes Povey windows: this recipe's {h['window']} window is not applied."
        )
    if args.dry_run:
        print(json.dumps({"cell": asdict(args), "table1": h, "runs": configs, "notes": notes}, indent=2))
        return {"table1": h, "runs": configs}
    if args.model == "beats" and not args.beats_checkpoint:
        raise ValueError("--model beats needs --beats_checkpoint: a directory from hf-add convert-beats")
    accuracies = [run(RunConfig.from_values(config)).mean["accuracy"] * 100 for config in configs]
    spread = f"{statistics.stdev(accuracies):.2f}" if len(accuracies) > 1 else "n/a"  # sample std, n - 1
    cell = f"{statistics.fmean(accuracies):.2f} ± {spread}"
    result = {
        "cell": asdict(args),
        "recipe": args.recipe,
        "accuracies": accuracies,
        "table2": cell,
        "notes": notes,
    }
    write_json(result, os.path.join(os.path.dirname(configs[0]["output_dir"]), "table2.json"))
    print(f"{args.dataset} / {args.model} / {args.loss} ({args.recipe} recipe): {cell}")
    return result
