"""Convert an official BEATs checkpoint (.pt) into a Hugging Face `save_pretrained` directory."""

import argparse

from hf_add.models.beats import convert_beats_checkpoint


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("checkpoint_path", help="official BEATs .pt ({'cfg', 'model'[, 'label_dict']})")
    parser.add_argument("output_dir", help="directory to create (must not exist)")
    parser.add_argument(
        "--push_to_hub", metavar="REPO", default=None, help="also upload to this Hub repository"
    )
    args = parser.parse_args()
    model = convert_beats_checkpoint(args.checkpoint_path, args.output_dir, push_to_hub=args.push_to_hub)
    print(f"Wrote {type(model).__name__} ({model.num_parameters():,} parameters) to {args.output_dir}")


if __name__ == "__main__":
    main()
