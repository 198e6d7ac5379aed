"""``hf-add train``: fine-tune AST / BEATs on an audio classification dataset with ADDTrainer, over the
protocol's folds (``hf_add.runs.run``).

    hf-add train --dataset esc50 --model_name_or_path MIT/ast-finetuned-audioset-10-10-0.4593 \
        --loss add --output_dir runs/esc50-add
    hf-add train config.yaml          # the same settings from a YAML or JSON file
    hf-add train config.yaml --learning_rate 0.01     # the file's settings, flags winning

Every flag is a field of the settings in ``hf_add.runs`` (model, data, loss, augmentation, schedule, and
Trainer's ``TrainingArguments``).
"""

from __future__ import annotations

import json
import logging
import sys

import yaml

from hf_add.runs import RunConfig, parse_settings, run

HELP = "fine-tune AST / BEATs / any *ForAudioClassification with CE + ADD (or CE, Focal, OPL)"


CONFIG_SUFFIXES = (".yaml", ".yml", ".json")


def read_config_file(path: str) -> dict:
    """The settings of a .yaml / .json config file: a mapping of setting names to values."""
    with open(path) as f:
        try:
            values = json.load(f) if path.endswith(".json") else yaml.safe_load(f)
        except (json.JSONDecodeError, yaml.YAMLError) as error:
            reason = " ".join(str(error).split())
            raise ValueError(
                f"{path} is not valid {'JSON' if path.endswith('.json') else 'YAML'}: {reason}"
            ) from None
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise ValueError(
            f"{path} must hold a mapping of setting names to values (e.g. learning_rate: 0.001), "
            f"not a {type(values).__name__}"
        )
    return values


def parse_config(argv: list[str]) -> RunConfig:
    """The run's config from command-line flags, after an optional .yaml / .json file of settings: the flags
    win over the file (``hf-add train config.yaml --learning_rate 0.01``). Every value is converted to its
    setting's type, and an unknown setting or a wrong type is named, before anything is loaded."""
    if argv and argv[0].endswith(CONFIG_SUFFIXES) and not argv[0].startswith("-"):
        return parse_settings(read_config_file(argv[0]), argv[1:], source=argv[0])
    return parse_settings(argv=argv)


def main(argv: list[str] | None = None) -> dict:
    """Train, and return what ``results.json`` holds."""
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    return run(parse_config(sys.argv[1:] if argv is None else argv)).results


if __name__ == "__main__":
    main()
