"""``hf-add push``: upload a saved model directory to the Hub."""

from __future__ import annotations

import argparse

HELP = "upload a saved model directory (weights, feature extractor, model card) to the Hub"


def main(argv: list[str] | None = None) -> None:
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
