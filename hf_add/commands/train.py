"""``hf-add train``: fine-tune AST / BEATs on an audio classification dataset with ADDTrainer, over the
protocol's folds (``hf_add.runs.run``).

    hf-add train --dataset esc50 --model_name_or_path MIT/ast-finetuned-audioset-10-10-0.4593 \
        --loss add --output_dir runs/esc50-add
    hf-add train config.yaml          # the same settings from a YAML or JSON file

Every flag is a field of the settings in ``hf_add.runs`` (model, data, loss, augmentation, schedule, and
Trainer's ``TrainingArguments``).
"""

from __future__ import annotations

import json
import logging
import sys

import yaml

from hf_add.runs import SETTINGS, RunConfig, run, settings_parser

HELP = "fine-tune AST / BEATs / any *ForAudioClassification with CE + ADD (or CE, Focal, OPL)"


def parse_config(argv: list[str]) -> RunConfig:
    """The run's config from command-line flags, or from a single .yaml / .json file of settings."""
    if len(argv) == 1 and argv[0].endswith((".yaml", ".yml", ".json")):
        with open(argv[0]) as f:
            values = json.load(f) if argv[0].endswith(".json") else yaml.safe_load(f)
        return RunConfig.from_values(values)
    parsed = settings_parser().parse_args_into_dataclasses(argv)
    return RunConfig(**dict(zip(SETTINGS, parsed, strict=True)))


def main(argv: list[str] | None = None) -> dict:
    """Train, and return what ``results.json`` holds."""
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    return run(parse_config(sys.argv[1:] if argv is None else argv)).results


if __name__ == "__main__":
    main()
