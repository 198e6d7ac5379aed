"""The dataset split that ``hf-add evaluate`` and ``hf-add embed`` read, and their shared flags.

The split is read as training reads it: a ``DatasetSpec`` (a preset's with ``--dataset``), its labels
resolved by ``attach_labels`` (so a preset's ``label_aliases`` and ``drop_labels`` apply: IEMOCAP's
"excited" is "happy"; ``--label_separator`` reads multi-label text), and every clip decoded and checked once.
"""

from __future__ import annotations

import argparse


def add_split_arguments(parser: argparse.ArgumentParser) -> None:
    """The model, where the data is, which split (and fold), its columns, and how the model runs."""
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
    parser.add_argument("--split", default="test", help="split to read (default: test)")
    parser.add_argument(
        "--split_column",
        default=None,
        help="a column whose values name each row's split, for a single-split dataset (e.g. partition)",
    )
    parser.add_argument(
        "--fold_column", default=None, help="with --fold: only the rows of one cross-validation fold"
    )
    parser.add_argument("--fold", default=None, help="the held-out fold of the model (e.g. 1 for fold1)")
    parser.add_argument("--audio_column", default=None, help="default: audio (or the preset's)")
    parser.add_argument("--label_column", default=None, help="default: label (or the preset's)")
    parser.add_argument(
        "--label_separator", default=None, help="multi-label text: split each label on this (e.g. ';')"
    )
    parser.add_argument("--skip_corrupt", action="store_true", help="skip (and list) unusable clips")
    parser.add_argument("--batch_size", type=int, default=16)
    precision = parser.add_mutually_exclusive_group()
    precision.add_argument("--bf16", action="store_true", help="bf16 autocast, as training with --bf16 true")
    precision.add_argument("--fp16", action="store_true", help="fp16 autocast, as training with --fp16 true")


def check_split_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if not (args.data_dir or args.dataset_name or args.dataset):
        parser.error("one of the arguments --data_dir --dataset_name --dataset is required")
    if (args.fold_column is None) != (args.fold is None):
        parser.error("--fold_column and --fold go together")


def embed_kwargs(args: argparse.Namespace) -> dict:
    """How ``hf_add.evaluation.embed_split`` runs the model."""
    return {
        "batch_size": args.batch_size,
        "precision": "bf16" if args.bf16 else "fp16" if args.fp16 else "fp32",
    }


def split_spec(args: argparse.Namespace):
    """The ``DatasetSpec`` of the data: the preset's (``--dataset``) or a plain one, with the location and
    columns given."""
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
        label_separator=args.label_separator,
    )


def load_splits(args: argparse.Namespace, reference_split: str | None = None):
    """(the rows read, the reference rows or None, the audio column, the clips skipped), labels resolved as
    in training and every clip decoded once. The rows read are ``--split`` (optionally ``--fold``); the
    reference rows, ``reference_split`` (with ``--fold``, its other folds when it is the same split). An
    empty or missing selection is an error that says what exists."""
    from hf_add.data import attach_labels, decode_and_check

    spec = split_spec(args)
    data = spec.load()
    for name in filter(None, (args.split, reference_split)):
        if name not in data:
            hint = (
                ""
                if args.split_column
                else " (a single-split folder is split by a column: --split_column partition)"
            )
            raise ValueError(f"the dataset has no split {name!r}; it has {list(data)}{hint}")
    dataset = data[args.split]
    reference = None if reference_split is None else data[reference_split]
    if args.fold_column:
        if args.fold_column not in dataset.column_names:
            raise ValueError(f"no column {args.fold_column!r}; the columns are {dataset.column_names}")
        in_fold = lambda value: str(value) == str(args.fold)  # noqa: E731
        dataset = dataset.filter(in_fold, input_columns=args.fold_column)
        if reference_split == args.split:
            reference = reference.filter(lambda value: not in_fold(value), input_columns=args.fold_column)
    if len(dataset) == 0:
        where = f" with {args.fold_column} = {args.fold}" if args.fold_column else ""
        raise ValueError(f"split {args.split!r}{where} has no rows; nothing to read")
    splits = {"read": dataset} if reference is None else {"read": dataset, "reference": reference}
    splits, _ = attach_labels(splits, spec)
    skipped = []
    for name, rows in splits.items():
        splits[name], unusable = decode_and_check(rows, args.split if name == "read" else reference_split,
                                                  spec.audio_column, args.skip_corrupt)  # fmt: skip
        skipped += unusable
    if len(splits["read"]) == 0:
        raise ValueError(f"every clip of split {args.split!r} was unusable; nothing to read")
    return splits["read"], splits.get("reference"), spec.audio_column, skipped
