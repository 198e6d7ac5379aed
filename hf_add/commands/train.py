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
import os
import shlex
import sys

import yaml

from hf_add.runs import FOLD_RESULTS, RunConfig, last_checkpoint, parse_settings, run

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
    argv = sys.argv[1:] if argv is None else list(argv)
    config = parse_config(argv)
    try:
        return run(config).results
    except KeyboardInterrupt:
        raise RunInterrupted(how_to_resume(config, argv)) from None


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during a run; its message names the last complete checkpoint and the command that resumes."""


def how_to_resume(config: RunConfig, argv: list[str]) -> str:
    """One line: where an interrupted run stands and the exact command that continues it."""
    output_dir = config.training.output_dir
    checkpoint = last_checkpoint(output_dir)
    finished = any(
        os.path.isfile(os.path.join(output_dir, name, FOLD_RESULTS))
        for name in (os.listdir(output_dir) if os.path.isdir(output_dir) else [])
    )
    if checkpoint is None and not finished:
        return f"no checkpoint was saved in {output_dir}; run the same command again to start over"
    kept, skip = [], False
    for word in argv:  # the same command, with --resume_from_checkpoint true in place of any given
        if skip:
            skip = False
        elif word == "--resume_from_checkpoint":
            skip = True
        elif not word.startswith("--resume_from_checkpoint="):
            kept.append(word)
    where = f"the last complete checkpoint is {checkpoint}" if checkpoint else "finished folds are kept"
    command = shlex.join(["hf-add", "train", *kept, "--resume_from_checkpoint", "true"])
    return f"{where}; resume with: {command}"


if __name__ == "__main__":
    main()
