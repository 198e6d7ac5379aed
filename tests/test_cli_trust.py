"""Issue 20: a CLI you can trust with a week of runs: config files and flags together, values checked before
any data loads, one-line errors for the environment's failures, the input length and a run summary."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml

from hf_add.cli import main
from hf_add.commands.train import parse_config
from hf_add.data.presets import DatasetSpec
from hf_add.runs import RunConfig

BASE = {
    "model_name_or_path": "ast-tiny",
    "dataset_name": "audiofolder",
    "data_dir": "data/spoken",
    "test_split": "test",
    "output_dir": "runs/x",
}


def write_config(path, **values):
    path.write_text(yaml.safe_dump({**BASE, **values}))
    return str(path)


@pytest.fixture
def no_data_loading(monkeypatch):
    """Any attempt to load a dataset fails the test: the checks must come first."""

    def load(self):
        pytest.fail("the data was loaded before the settings were checked")

    monkeypatch.setattr(DatasetSpec, "load", load)


def hf_add_cli(*argv: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """The `hf-add` executable (console_main) in its own process."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("HF_ADD_TRACEBACK", None)
    return subprocess.run(
        [sys.executable, "-m", "hf_add.cli", *argv], env=env, capture_output=True, text=True, timeout=timeout
    )


# ---- config files and flags together ----


def test_config_file_values_take_their_types_and_flags_win(tmp_path):
    path = write_config(
        tmp_path / "c.yaml", learning_rate="1e-3", num_train_epochs=2, add_lambdas=[1, 0, 1, 0]
    )
    config = parse_config([path])
    assert config.training.learning_rate == 0.001 and isinstance(config.training.learning_rate, float)
    assert config.training.num_train_epochs == 2.0 and config.loss.add_lambdas == [1.0, 0.0, 1.0, 0.0]
    config = parse_config([path, "--learning_rate", "0.01", "--add_lambdas", "1", "1", "0", "0"])
    assert config.training.learning_rate == 0.01 and config.loss.add_lambdas == [1.0, 1.0, 0.0, 0.0]
    assert config.model.model_name_or_path == "ast-tiny"  # the rest of the file is kept
    (tmp_path / "c.json").write_text('{"model_name_or_path": "ast-tiny", "output_dir": "o", "mixup": "0.5"}')
    assert parse_config([str(tmp_path / "c.json"), "--test_split", "t"]).augmentation.mixup == 0.5


def test_from_values_converts_as_the_command_line_does():
    config = RunConfig.from_values({**BASE, "learning_rate": "1e-3", "max_steps": 3.0, "use_cpu": "true"})
    assert (
        config.training.learning_rate == 0.001 and config.training.max_steps == 3 and config.training.use_cpu
    )
    with pytest.raises(ValueError, match=r"^--max_steps must be a whole number \(int\), got 'three'$"):
        RunConfig.from_values({**BASE, "max_steps": "three"})


@pytest.mark.parametrize(
    "values, message",
    [
        (
            {"num_train_epochs": "two"},
            r"num_train_epochs in \S+c\.yaml must be a number \(float\), got 'two'",
        ),
        (
            {"lerning_rate": 0.1},
            r"unknown setting 'lerning_rate' in \S+c\.yaml \(did you mean learning_rate\?\)",
        ),
        ({"learning_rate": [1, 2]}, r"learning_rate in \S+c\.yaml takes one value, got the list \[1, 2\]"),
        ({"per_device_train_batch_size": 2.5}, r"per_device_train_batch_size in \S+ must be a whole number"),
        ({"loss": None}, r"loss in \S+ is null: leave it out for its default \('add'\)"),
    ],
    ids=["type", "unknown", "list", "int", "null"],
)
def test_config_file_mistakes_are_named_before_any_data_loads(tmp_path, no_data_loading, values, message):
    with pytest.raises(ValueError, match=message):
        main(["train", write_config(tmp_path / "c.yaml", **values)])
    assert not os.path.exists("runs/x")


def test_a_config_file_mistake_is_one_line_from_the_executable(tmp_path):
    path = write_config(tmp_path / "c.yaml", num_train_epochs="two")
    result = hf_add_cli("train", path, "--learning_rate", "0.01")
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        f"hf-add train: error: num_train_epochs in {path} must be a number (float), got 'two'"
    ]
