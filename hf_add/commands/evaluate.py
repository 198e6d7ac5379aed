"""``hf-add evaluate``: accuracy and Figure 5-style embedding geometry of a saved model on a dataset split.

The split is read as training reads it: a ``DatasetSpec`` (a preset's with ``--dataset``), its labels
resolved by ``attach_labels`` (so a preset's ``label_aliases`` and ``drop_labels`` apply: IEMOCAP's
"excited" is "happy"), and every clip decoded and checked once.
"""

from __future__ import annotations

import argparse

HELP = "accuracy and embedding geometry of a saved model on a dataset split, with a heatmap"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hf-add evaluate",
        description="Accuracy and Figure 5-style embedding geometry of a saved model on a dataset split.",
    )
    parser.add_argument("model", help="model directory or Hub id (with its feature extractor)")
    parser.add_argument(
        "--dataset",
        default=None,
        help="a preset whose label rules apply (esc50|ks2|er; er merges excited into happy); its Hub copy "
        "unless --data_dir or --dataset_name says where the data is",
    )
    source = parser.add_mutually_exclusive_group()
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
    parser.add_argument("--audio_column", default=None, help="default: audio (or the preset's)")
    parser.add_argument("--label_column", default=None, help="default: label (or the preset's)")
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
    return parser


def main(argv: list[str] | None = None) -> dict:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not (args.data_dir or args.dataset_name or args.dataset):
        parser.error("one of the arguments --data_dir --dataset_name --dataset is required")
    if (args.fold_column is None) != (args.fold is None):
        parser.error("--fold_column and --fold go together")

    from hf_add.data import decode_and_check
    from hf_add.evaluation import evaluate_model
    from hf_add.files import write_json
    from hf_add.models.loading import check_model_location, check_saved_weights
    from hf_add.plots import plot_geometry_heatmaps

    check_model_location(args.model)
    check_saved_weights(args.model)
    dataset, audio_column = load_evaluation_split(args)
    dataset, skipped = decode_and_check(dataset, args.split, audio_column, args.skip_corrupt)
    if len(dataset) == 0:
        raise ValueError(f"every clip of split {args.split!r} was unusable; nothing to evaluate")
    results = evaluate_model(
        args.model,
        dataset,
        audio_column=audio_column,
        label_column="labels",
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
    return results


def evaluation_spec(args: argparse.Namespace):
    """The ``DatasetSpec`` of the evaluated data: the preset's (``--dataset``) or a plain one, with the
    location and columns given."""
    from hf_add.data import get_spec

    if args.data_dir:
        location = {"path": "audiofolder", "data_dir": args.data_dir}
    elif args.dataset_name:
        location = {"path": args.dataset_name, "config_name": args.dataset_config}
    else:
        location = {"config_name": args.dataset_config}
    return get_spec(
        args.dataset,
        **location,
        split_column=args.split_column,
        audio_column=args.audio_column,
        label_column=args.label_column,
    )


def load_evaluation_split(args: argparse.Namespace):
    """The rows ``hf-add evaluate`` scores, with their ``labels`` resolved as in training, and the audio
    column: one split (by name, or by ``--split_column``), optionally one fold; an empty or missing selection
    is an error that says what exists."""
    from hf_add.data import attach_labels

    spec = evaluation_spec(args)
    data = spec.load()
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
    splits, _ = attach_labels({args.split: dataset}, spec)
    return splits[args.split], spec.audio_column


if __name__ == "__main__":
    main()
