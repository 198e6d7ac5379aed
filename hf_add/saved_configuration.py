"""Where ADDTrainer saves the loss configuration with a model, and how it is read back (resume, cards).

It is the trainer's key in the model's ``config.json`` (every checkpoint carries it); a PEFT adapter, saved
without a ``config.json``, gets it as a file of its own beside the adapter.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

CONFIG_KEY = "hf_add_training"
TRAINING_FILE = "hf_add_training.json"


def saved_training_configuration(directory: str | os.PathLike) -> dict | None:
    """The loss configuration saved in a model or checkpoint directory (config.json, or the file beside
    a PEFT adapter); None when there is none."""
    try:
        return load_config(directory).get(CONFIG_KEY)
    except FileNotFoundError:
        return None


def load_config(model_dir_or_config) -> dict:
    """A model's config as a dict: from a mapping, a config object, a directory or its config.json, or a
    PEFT adapter directory (the saved loss configuration and the base model)."""
    if isinstance(model_dir_or_config, Mapping):
        return dict(model_dir_or_config)
    if hasattr(model_dir_or_config, "to_dict"):
        return model_dir_or_config.to_dict()
    path = Path(model_dir_or_config)
    if path.is_dir() and not (path / "config.json").is_file() and (path / TRAINING_FILE).is_file():
        return _adapter_config(path)
    path = path / "config.json" if path.is_dir() else path
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _adapter_config(directory: Path) -> dict:
    """What a card needs from a PEFT adapter directory: the loss configuration and the base model."""
    config = {CONFIG_KEY: json.loads((directory / TRAINING_FILE).read_text(encoding="utf-8"))}
    adapter_config = directory / "adapter_config.json"
    if adapter_config.is_file():
        config["_name_or_path"] = json.loads(adapter_config.read_text()).get("base_model_name_or_path")
    return config
