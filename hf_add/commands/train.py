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

import argparse
import dataclasses
import json
import logging
import os
import re
import shlex
import sys

import yaml

from hf_add.runs import FOLD_RESULTS, RunConfig, last_checkpoint, parse_settings, run, settings_parser

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


# Trainer's flags that most runs set, shown in the short help (every one: --help_all).
COMMON_TRAINER_FLAGS = (
    "output_dir", "num_train_epochs", "max_steps", "learning_rate", "per_device_train_batch_size",
    "per_device_eval_batch_size", "gradient_accumulation_steps", "weight_decay", "eval_strategy", "save_strategy",
    "save_steps", "save_total_limit", "load_best_model_at_end", "metric_for_best_model", "logging_steps", "seed",
    "bf16", "fp16", "use_cpu", "report_to", "push_to_hub", "hub_model_id", "dataloader_num_workers",
    "overwrite_output_dir", "resume_from_checkpoint",
)  # fmt: skip
HF_ADD_FLAG_NOTE = """hf-add train [config.yaml] [flags]: a .yaml / .json file of settings (keys are the flag names),
then flags, which win. Every value is checked before any data loads. The optimizer and schedule are hf-add's
(--optimizer, --warmup_epochs, --lr_schedule): Trainer's --optim and --lr_scheduler_type are refused, and
--warmup_steps is for --streaming true only. --help_all lists every Trainer flag."""


METAVARS = {int: "N", float: "X"}
DEFAULT_NOTES = {"logging_steps": "500, which hf-add train makes a twentieth of the run's steps"}


def _first_sentence(text: str) -> str:
    text = " ".join((text or "").split())
    end = re.search(r"(?<=[a-z0-9)\]])\. ", text)
    return text[: end.start() + 1] if end else text


def short_help() -> str:
    """``hf-add train --help``: hf-add's own settings, by group, then the Trainer flags most runs set."""
    from hf_add.runs import SETTINGS

    full = settings_parser()
    actions = {action.dest: action for action in full._actions if action.option_strings}
    display = argparse.ArgumentParser(
        prog="hf-add train",
        usage="hf-add train [config.yaml] --model_name_or_path M --output_dir DIR [flags]",
        description=HF_ADD_FLAG_NOTE,
        formatter_class=lambda prog: argparse.RawDescriptionHelpFormatter(
            prog, max_help_position=36, width=110
        ),
        add_help=False,
    )
    display.add_argument("-h", "--help", action="store_true", help="this help")
    display.add_argument("--help_all", action="store_true", help="every flag, Trainer's included")

    def show(group, dest: str, help_text: str) -> None:
        action = actions[dest]
        default = action.default
        shown = not (default is None or default is False or default == "" or default is argparse.SUPPRESS)
        suffix = f" (default: {DEFAULT_NOTES.get(dest, default)})" if shown else ""
        if action.required or dest == "output_dir":
            suffix = " (required)"
        metavar = "true|false" if action.nargs == "?" else METAVARS.get(action.type, "NAME")
        nargs = {"nargs": "+"} if action.nargs in ("+", "*") else {}
        group.add_argument(
            f"--{dest}", help=(help_text + suffix).replace("%", "%%"), metavar=metavar, **nargs
        )

    for name, settings in SETTINGS.items():
        if name == "training":
            continue
        group = display.add_argument_group(f"{name} ({settings.__name__})", _first_sentence(settings.__doc__))
        for field in dataclasses.fields(settings):
            show(group, field.name, field.metadata.get("help", ""))
    trainer = display.add_argument_group("Trainer (TrainingArguments; the most used, --help_all for all)")
    for dest in COMMON_TRAINER_FLAGS:
        show(trainer, dest, _first_sentence(actions[dest].help))
    return display.format_help()


def main(argv: list[str] | None = None) -> dict:
    """Train, and return what ``results.json`` holds."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if "--help_all" in argv:
        settings_parser().print_help()
        return {}
    if "-h" in argv or "--help" in argv:
        print(short_help())
        return {}
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
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
