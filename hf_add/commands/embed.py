"""``hf-add embed``: one row per clip of a dataset split with the model's embedding (the classification
head's input), its label and its file, as a Parquet file that pandas and datasets read.

The split is read as training reads it (``hf_add.commands.dataset_split``); from Python:
``hf_add.evaluation.export_embeddings``.
"""

from __future__ import annotations

import argparse

from hf_add.commands.dataset_split import (
    add_split_arguments,
    check_split_arguments,
    embed_kwargs,
    load_splits,
)

HELP = "write the embeddings of a dataset split (the head's input, label, file) to a Parquet file"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hf-add embed",
        description="One row per clip: 'embedding' (the classification head's input, float32), 'label' (the "
        "class name; a list for multi-label data) and 'file', written to a Parquet file.",
        epilog="example: hf-add embed runs/ast-add/test --data_dir data/spoken --split_column partition "
        "--split test --output embeddings.parquet   then: pandas.read_parquet('embeddings.parquet')",
    )
    add_split_arguments(parser)
    parser.add_argument("--output", required=True, help="the Parquet file to write (e.g. embeddings.parquet)")
    return parser


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    check_split_arguments(parser, args)

    from hf_add.evaluation import export_embeddings
    from hf_add.models.loading import check_model_location

    check_model_location(args.model)
    dataset, _, audio_column, skipped = load_splits(args)
    table = export_embeddings(
        args.model,
        dataset,
        args.output,
        audio_column=audio_column,
        label_column="labels",
        **embed_kwargs(args),
    )
    dimension = len(table[0]["embedding"]) if len(table) else 0
    print(f"{len(table)} embeddings of dimension {dimension} written to {args.output}")
    if skipped:
        print(f"  ({len(skipped)} unusable clip(s) skipped: listed in the warnings above)")


if __name__ == "__main__":
    main()
