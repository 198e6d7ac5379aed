"""``hf-add convert-beats``: an official BEATs checkpoint as a Hugging Face model directory."""

from __future__ import annotations

import argparse

HELP = "convert an official BEATs checkpoint (.pt) into a Hugging Face model directory"


def main(argv: list[str] | None = None) -> None:
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
