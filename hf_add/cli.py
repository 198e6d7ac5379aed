"""The ``hf-add`` command line: one entry point, one sub-command per job.

Each sub-command is the ``main(argv)`` of the module that does the work, so ``hf-add train ...`` and
``python -m hf_add.finetune ...`` are the same program, and ``hf-add <command> --help`` documents it.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

USAGE = """usage: hf-add <command> [options]     (hf-add <command> --help for a command's options)

Train and study audio classifiers with the Angular Distance Distribution (ADD) loss.

commands:
  make-dataset   speak a word list with espeak-ng into a spoken-commands audiofolder (offline data)
  train          fine-tune AST / BEATs / any *ForAudioClassification with CE + ADD (or CE, Focal, OPL)
  evaluate       accuracy and embedding geometry of a saved model on a dataset split, with a heatmap
  reproduce      one cell of the paper's Table 2 (dataset x model x loss, several seeds)
  study          the offline ablation study of the ADD terms (results table, heatmaps)
  pretrain       an offline pretrained AST backbone (CE on 258 other spoken words, other voices)
  convert-beats  convert an official BEATs checkpoint (.pt) into a Hugging Face model directory
  push           upload a saved model directory (weights, feature extractor, model card) to the Hub

example (offline):
  hf-add make-dataset --output_dir data/spoken --clips_per_word 20
  hf-add train --model_name_or_path ast-tiny --dataset_name audiofolder --data_dir data/spoken \\
      --split_column partition --validation_split validation --test_split test \\
      --loss add --eval_strategy epoch --output_dir runs/ast-add
  hf-add evaluate runs/ast-add/test --data_dir data/spoken --split_column partition --split test \\
      --heatmap runs/ast-add/geometry.png
"""


def evaluate_main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(
        prog="hf-add evaluate",
        description="Accuracy and Figure 5-style embedding geometry of a saved model on a dataset split.",
    )
    parser.add_argument("model", help="model directory or Hub id (with its feature extractor)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--data_dir", help="a local audiofolder (WAV files + metadata.csv)")
    source.add_argument("--dataset_name", help="a Hub dataset id, e.g. ashraq/esc50")
    parser.add_argument("--dataset_config", default=None, help="Hub dataset configuration name")
    parser.add_argument("--split", default="test", help="split to evaluate (default: test)")
    parser.add_argument(
        "--split_column",
        default=None,
        help="a column whose values name each row's split, for a single-split dataset (e.g. partition)",
    )
    parser.add_argument(
        "--fold_column", default=None, help="with --fold: evaluate only the rows of one cross-validation fold"
    )
    parser.add_argument("--fold", default=None, help="the held-out fold of the model (e.g. 1 for fold1)")
    parser.add_argument("--audio_column", default="audio")
    parser.add_argument("--label_column", default="label")
    parser.add_argument("--skip_corrupt", action="store_true", help="skip (and list) unusable clips")
    parser.add_argument("--batch_size", type=int, default=16)
    precision = parser.add_mutually_exclusive_group()
    precision.add_argument("--bf16", action="store_true", help="bf16 autocast, as training with --bf16 true")
    precision.add_argument("--fp16", action="store_true", help="fp16 autocast, as training with --fp16 true")
    parser.add_argument("--output", default=None, help="write the results as JSON here")
    parser.add_argument("--heatmap", default=None, help="write a PNG of the class-pair mean and CV of d here")
    parser.add_argument(
        "--heatmap_classes",
        default=None,
        help="comma-separated class names to draw (default: every class up to 20; with more, the 20 classes of "
        "the closest class pairs by mean d); the figure states which",
    )
    args = parser.parse_args(argv)
    if (args.fold_column is None) != (args.fold is None):
        parser.error("--fold_column and --fold go together")

    from hf_add.data import decode_and_check
    from hf_add.data.features import check_model_location
    from hf_add.evaluation import evaluate_model
    from hf_add.files import write_json
    from hf_add.plots import plot_geometry_heatmaps

    check_model_location(args.model)
    dataset = load_evaluation_split(args)
    dataset, skipped = decode_and_check(dataset, args.split, args.audio_column, args.skip_corrupt)
    if len(dataset) == 0:
        raise ValueError(f"every clip of split {args.split!r} was unusable; nothing to evaluate")
    results = evaluate_model(
        args.model,
        dataset,
        audio_column=args.audio_column,
        label_column=args.label_column,
        batch_size=args.batch_size,
        precision="bf16" if args.bf16 else "fp16" if args.fp16 else "fp32",
    )
    results["skipped_clips"] = skipped
    print(f"accuracy {100 * results['accuracy']:.2f}% on {results['num_samples']} clips")
    if skipped:
        print(f"  ({len(skipped)} unusable clip(s) skipped: listed in the warnings above and in --output)")
    for name, value in results["geometry"].items():
        print(
            f"  {name:28s} {value:.4f}" if value is not None and value == value else f"  {name:28s} undefined"
        )
    if args.output:
        write_json(results, args.output)
        print(f"results: {args.output}")
    if args.heatmap:
        geometry = {
            "mean_distance": results["mean_distance"],
            "cv_distance": results["cv_distance"],
            "accuracy": results["accuracy"],
        }
        classes = [c.strip() for c in args.heatmap_classes.split(",")] if args.heatmap_classes else None
        plot_geometry_heatmaps({args.model: geometry}, args.heatmap, results["class_names"], classes=classes)
        print(f"heatmap: {args.heatmap}")


def load_evaluation_split(args: argparse.Namespace):
    """The rows ``hf-add evaluate`` scores: one split (by name, or by ``--split_column``), optionally one
    fold; an empty or missing selection is an error that says what exists."""
    from datasets import load_dataset

    from hf_add.data.presets import split_by_column

    if args.data_dir:
        data = load_dataset("audiofolder", data_dir=args.data_dir)
    else:
        data = load_dataset(args.dataset_name, args.dataset_config)
    if args.split_column:
        data = split_by_column(data, args.split_column, args.data_dir)
    if args.split not in data:
        hint = (
            ""
            if args.split_column
            else " (a single-split folder is split by a column: --split_column partition)"
        )
        raise ValueError(f"the dataset has no split {args.split!r}; it has {list(data)}{hint}")
    dataset = data[args.split]
    if args.fold_column:
        if args.fold_column not in dataset.column_names:
            raise ValueError(f"no column {args.fold_column!r}; the columns are {dataset.column_names}")
        dataset = dataset.filter(lambda value: str(value) == str(args.fold), input_columns=args.fold_column)
    if len(dataset) == 0:
        where = f" with {args.fold_column} = {args.fold}" if args.fold_column else ""
        raise ValueError(f"split {args.split!r}{where} has no rows; nothing to evaluate")
    return dataset


def convert_beats_main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(
        prog="hf-add convert-beats",
        description="Convert an official BEATs checkpoint (.pt) into a Hugging Face save_pretrained directory.",
    )
    parser.add_argument("checkpoint_path", help="official BEATs .pt ({'cfg', 'model'[, 'label_dict']})")
    parser.add_argument("output_dir", help="directory to create (must not exist)")
    parser.add_argument(
        "--push_to_hub", metavar="REPO", default=None, help="also upload to this Hub repository"
    )
    parser.add_argument(
        "--allow_pickle",
        action="store_true",
        help="read a checkpoint that holds more than tensors, dicts, strings and numbers: this runs the code "
        "the file carries, so only for a file from a source you trust (official checkpoints do not need it)",
    )
    args = parser.parse_args(argv)

    from hf_add.models.beats import convert_beats_checkpoint

    model = convert_beats_checkpoint(
        args.checkpoint_path, args.output_dir, push_to_hub=args.push_to_hub, allow_pickle=args.allow_pickle
    )
    print(f"Wrote {type(model).__name__} ({model.num_parameters():,} parameters) to {args.output_dir}")


def push_main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(
        prog="hf-add push",
        description="Upload a saved model directory to the Hub; renders its model card first if it has none.",
    )
    parser.add_argument("model_dir")
    parser.add_argument("repo_id", help="e.g. your-name/ast-esc50-add")
    parser.add_argument("--private", action="store_true")
    parser.add_argument("--commit_message", default="Upload model trained with hf-add")
    args = parser.parse_args(argv)

    from hf_add.hub import push_model_dir

    commit = push_model_dir(
        args.model_dir, args.repo_id, private=args.private, commit_message=args.commit_message
    )
    print(f"pushed {args.model_dir} to {getattr(commit, 'commit_url', args.repo_id)}")


def _module_main(module: str):
    def run(argv: list[str]) -> None:
        importlib.import_module(module).main(argv)

    return run


COMMANDS = {
    "make-dataset": _module_main("hf_add.data.spoken_commands"),
    "train": _module_main("hf_add.finetune"),
    "evaluate": evaluate_main,
    "reproduce": _module_main("hf_add.research.table2"),
    "study": _module_main("hf_add.research.study"),
    "pretrain": _module_main("hf_add.research.pretrain"),
    "convert-beats": convert_beats_main,
    "push": push_main,
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"hf-add: unknown command {command!r}\n\n{USAGE}", file=sys.stderr)
        return 2
    COMMANDS[command](rest)
    return 0


# What a user's input can cause: said in one line, not a traceback (HF_ADD_TRACEBACK=1 shows it).
USER_ERRORS = (ValueError, FileExistsError, FileNotFoundError, NotADirectoryError)


def console_main() -> int:
    """The ``hf-add`` executable: ``main`` with a user's mistakes reported as one ``error:`` line, exit 2."""
    try:
        return main()
    except USER_ERRORS as error:
        if os.environ.get("HF_ADD_TRACEBACK"):
            raise
        command = f"hf-add {sys.argv[1]}" if len(sys.argv) > 1 else "hf-add"
        print(f"{command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(console_main())
