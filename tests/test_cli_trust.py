"""Issue 20: a CLI you can trust with a week of runs: config files and flags together, values checked before
any data loads, one-line errors for the environment's failures, the input length and a run summary."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time

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


# ---- every value range-checked before any data loads ----

FLAGS = [f"--{key}={value}" for key, value in BASE.items()]


def console(monkeypatch, capsys, *argv: str) -> tuple[int, list[str]]:
    """`hf-add` as the executable runs it (console_main): the exit code and stderr's lines."""
    from hf_add.cli import console_main

    monkeypatch.setattr(sys, "argv", ["hf-add", *argv])
    monkeypatch.delenv("HF_ADD_TRACEBACK", raising=False)
    code = console_main()
    return code, capsys.readouterr().err.strip().splitlines()


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--mixup", "1.5"], r"--mixup must be in \[0, 1\] \(a probability\), got 1.5"),
        (["--mixup", "-0.5"], r"--mixup must be in \[0, 1\]"),
        (
            ["--mixup_alpha", "0"],
            r"--mixup_alpha must be > 0 and finite \(λ ~ Beta\(alpha, alpha\)\), got 0.0",
        ),
        (["--freq_mask", "-3"], r"--freq_mask must be ≥ 0 and at most the model's 128 mel bins, got -3"),
        (["--freq_mask", "500"], r"--freq_mask must be ≥ 0 and at most the model's 128 mel bins, got 500"),
        (["--time_mask", "-5"], r"--time_mask must be ≥ 0, got -5"),
        (
            ["--time_mask", "200", "--ast_max_length", "100"],
            r"--time_mask must be ≥ 0 and at most the model's 100",
        ),
        (["--ast_max_length", "8"], r"--ast_max_length must be at least 16 frames"),
        (["--add_lambdas", "1", "-1", "1", "1"], r"--add_lambdas must be ≥ 0 and finite \(each of the 4"),
        (["--add_lambdas", "1", "nan", "1", "1"], r"--add_lambdas must be ≥ 0 and finite"),
        (["--add_lambdas", "1", "1"], r"--add_lambdas takes 4 numbers"),
        (["--add_lambda_mu", "inf"], r"--add_lambda_mu must be ≥ 0 and finite, got inf"),
        (["--loss", "arcface"], r"--loss must be ce, focal, opl or add, got 'arcface'"),
        (["--classification_loss", "mse"], r"--classification_loss must be one of ce\|bce, got 'mse'"),
        (["--add_soft_mu", "sum"], r"--add_soft_mu must be one of paper\|per_set"),
        (["--loss", "focal", "--focal_gamma", "-1"], r"--focal_gamma must be ≥ 0"),
        (["--loss", "opl", "--opl_gamma", "-2"], r"--opl_gamma must be ≥ 0"),
        (["--per_device_train_batch_size", "0"], r"--per_device_train_batch_size must be at least 1, got 0"),
        (["--per_device_eval_batch_size", "0"], r"--per_device_eval_batch_size must be at least 1"),
        (["--gradient_accumulation_steps", "0"], r"--gradient_accumulation_steps must be at least 1"),
        (["--samples_per_class", "1"], r"--samples_per_class must be at least 2"),
        (
            ["--samples_per_class", "3", "--per_device_train_batch_size", "8"],
            r"a divisor of --per_device_train",
        ),
        (["--learning_rate=-1e-3"], r"--learning_rate must be ≥ 0 and finite, got -0.001"),
        (["--learning_rate", "nan"], r"--learning_rate must be ≥ 0 and finite, got nan"),
        (["--num_train_epochs", "0"], r"--num_train_epochs must be > 0 and finite \(or set --max_steps\)"),
        (["--warmup_epochs", "-1"], r"--warmup_epochs must be ≥ 0"),
        (["--lr_decay", "0"], r"--lr_decay must be in \(0, 1\]"),
        (["--lr_decay", "1.5"], r"--lr_decay must be in \(0, 1\]"),
        (["--optimizer", "sgd"], r"--optimizer must be one of adam\|adamw"),
        (["--lr_schedule", "linear"], r"--lr_schedule must be one of constant\|cosine\|exponential"),
        (["--cv_folds", "0"], r"--cv_folds must be at least 1"),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, list) else None,
)
def test_out_of_range_values_are_one_line_before_any_data_loads(
    tmp_path, monkeypatch, capsys, no_data_loading, flags, message
):
    monkeypatch.chdir(tmp_path)
    code, lines = console(monkeypatch, capsys, "train", *FLAGS, *flags)
    assert code == 2 and len(lines) == 1, lines
    assert lines[0].startswith("hf-add train: error: --")
    assert re.search(message, lines[0]), lines[0]
    assert not (tmp_path / "runs").exists()  # nothing written


# ---- one line for the machine's failures: disk, permissions, corrupt files, network, Ctrl-C ----


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    from .audio_fixtures import write_audiofolder

    return write_audiofolder(tmp_path_factory.mktemp("clips") / "data", ["yes", "no", "up"], 6, seconds=0.3)


QUICK = ["--report_to", "none", "--use_cpu", "true", "--disable_tqdm", "true", "--seed", "0"]


def train_flags(data, output, *extra) -> list[str]:
    return [
        "train", "--model_name_or_path", "ast-tiny", "--ast_max_length", "40", "--dataset_name", "audiofolder",
        "--data_dir", str(data), "--fold_column", "fold", "--cv_folds", "1", "--loss", "add",
        "--per_device_train_batch_size", "4", "--output_dir", str(output), *QUICK, *extra,
    ]  # fmt: skip


def mounted_tmpfs(directory, options: str):
    """A tmpfs mounted at ``directory`` (root only); skips the test where mounting is not possible."""
    directory.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(directory)], capture_output=True
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.decode().strip()}")
    return directory


@pytest.fixture
def small_disk(tmp_path):
    disk = mounted_tmpfs(tmp_path / "small", "size=256k")
    yield disk
    subprocess.run(["umount", str(disk)], check=False)


@pytest.fixture
def read_only_disk(tmp_path):
    disk = mounted_tmpfs(tmp_path / "ro", "ro,size=64k")
    yield disk
    subprocess.run(["umount", str(disk)], check=False)


def test_a_full_disk_is_one_line_naming_the_directory(clips, small_disk, monkeypatch, capsys):
    output = small_disk / "run"
    code, lines = console(
        monkeypatch, capsys, *train_flags(clips, output, "--max_steps", "50", "--save_steps", "1")
    )
    assert code == 1 and not any("Traceback" in line for line in lines), lines  # progress bars come first
    assert lines[-1].startswith(f"hf-add train: error: no space left on the device of {output}"), lines[-1]
    assert f"df -h {small_disk}" in lines[-1] and "--resume_from_checkpoint true" in lines[-1]


def test_a_read_only_output_dir_is_one_line_before_any_data_loads(read_only_disk, monkeypatch, capsys):
    output = read_only_disk / "run"
    code, lines = console(monkeypatch, capsys, "train", *FLAGS[:-1], f"--output_dir={output}")
    assert code == 1 and lines == [
        f"hf-add train: error: {output} is on a read-only file system: write to a directory on a writable disk "
        "(e.g. --output_dir)"
    ]
    monkeypatch.setenv("HF_ADD_TRACEBACK", "1")  # the traceback, on demand
    monkeypatch.setattr(sys, "argv", ["hf-add", "train", *FLAGS[:-1], f"--output_dir={output}"])
    from hf_add.cli import console_main

    with pytest.raises(OSError, match="Read-only file system"):
        console_main()


def test_permission_denied_is_one_line_naming_the_path(tmp_path, monkeypatch, capsys, no_data_loading):
    import errno

    def refuse(directory, *args, **kwargs):  # root passes chmod 0555: the refusal is simulated
        raise PermissionError(errno.EACCES, "Permission denied", str(directory))

    monkeypatch.setattr("hf_add.runs.run_lock", refuse)
    code, lines = console(monkeypatch, capsys, "train", *FLAGS[:-1], f"--output_dir={tmp_path}/run")
    assert code == 1 and lines == [
        f"hf-add train: error: permission denied: {tmp_path}/run: write to a directory you own, or fix its "
        f"permissions (ls -ld {tmp_path})"
    ]


@pytest.fixture
def saved_model(tmp_path):
    from transformers import ASTFeatureExtractor

    from .tiny import AST_FRAMES, AST_MELS, tiny_ast

    directory = tmp_path / "model"
    tiny_ast().save_pretrained(directory)
    ASTFeatureExtractor(num_mel_bins=AST_MELS, max_length=AST_FRAMES).save_pretrained(directory)
    return directory


def test_a_truncated_safetensors_file_is_named_before_any_data_loads(
    saved_model, monkeypatch, capsys, no_data_loading
):
    weights = saved_model / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    code, lines = console(
        monkeypatch, capsys, "evaluate", str(saved_model), "--data_dir", "data", "--split", "test"
    )
    assert code == 2 and len(lines) == 1, lines
    assert (
        lines[0].startswith(f"hf-add evaluate: error: {weights} cannot be read (") and "truncated" in lines[0]
    )


def test_push_without_network_is_one_line_and_leaves_the_directory_as_it_was(
    saved_model, monkeypatch, capsys
):
    import huggingface_hub

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    before = sorted(path.name for path in saved_model.iterdir())
    code, lines = console(monkeypatch, capsys, "push", str(saved_model), "someone/ast-tiny")
    assert code == 1 and len(lines) == 1, lines
    assert lines[0].startswith(
        f"hf-add push: error: cannot reach the Hub to push {saved_model} to someone/ast-tiny:"
    )
    assert "offline" in lines[0] and "is unchanged" in lines[0]
    assert sorted(path.name for path in saved_model.iterdir()) == before  # no README.md left behind


def test_push_with_no_route_to_the_hub_is_one_line(saved_model, monkeypatch, capsys):
    from huggingface_hub import HfApi

    class ConnectError(Exception):  # the HTTP client's class, recognised by name
        pass

    def unreachable(self, *args, **kwargs):
        raise ConnectError("[Errno -2] Name or service not known")

    monkeypatch.setattr(HfApi, "create_repo", unreachable)
    code, lines = console(monkeypatch, capsys, "push", str(saved_model), "someone/ast-tiny")
    assert code == 1 and len(lines) == 1 and "Name or service not known" in lines[0], lines
    assert not (saved_model / "README.md").exists()


def test_ctrl_c_names_the_checkpoint_and_the_command_that_resumes(clips, tmp_path):
    output = tmp_path / "run"
    argv = train_flags(clips, output, "--max_steps", "60", "--save_steps", "2")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("HF_ADD_TRACEBACK", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "hf_add.cli", *argv],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    first = output / "fold1" / "checkpoint-2" / "trainer_state.json"
    deadline = time.monotonic() + 240
    while not first.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    last = stderr.decode().strip().splitlines()[-1]
    assert process.returncode == 130, stderr.decode()[-3000:]
    assert "Traceback" not in stderr.decode()
    match = re.fullmatch(
        r"hf-add train: interrupted: the last complete checkpoint is (\S+); resume with: (hf-add train .*)",
        last,
    )
    assert match, last
    checkpoint, command = match.groups()
    assert os.path.isfile(os.path.join(checkpoint, "trainer_state.json")) and checkpoint.startswith(
        str(output)
    )
    resume = shlex.split(command)
    assert resume[-2:] == ["--resume_from_checkpoint", "true"] and resume[1:-2] == argv
    resumed = subprocess.run(  # the printed command, as printed, resumes and finishes the run
        [sys.executable, "-m", "hf_add.cli", *resume[1:]],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "Continuing training from checkpoint" in resumed.stderr or (output / "results.json").exists()
    assert (output / "results.json").exists() and not (output / ".hf-add.lock").exists()


# ---- the input length from the data, and the run summary ----


def run_summary(caplog) -> str:
    return "\n".join(r.getMessage() for r in caplog.records if r.name == "hf_add.runs")


def test_short_clips_get_a_short_input_not_1024_frames(tmp_path, caplog):
    import json
    import logging

    from .audio_fixtures import write_audiofolder

    data = write_audiofolder(tmp_path / "short", ["yes", "no"], 4, seconds=0.5)
    argv = train_flags(data, tmp_path / "run", "--max_steps", "1", "--save_strategy", "no")
    argv.remove("--ast_max_length"), argv.remove("40")
    with caplog.at_level(logging.INFO, logger="hf_add.runs"):
        assert main(argv) == 0
    saved = json.loads((tmp_path / "run" / "fold1" / "preprocessor_config.json").read_text())
    assert saved["max_length"] == 48  # 0.5 s: (8000 - 400) // 160 + 1 frames, not 1024
    summary = run_summary(caplog)
    assert "input       48 frames (0.48 s), the longest clip: no clip is cut (longest 0.50 s)" in summary
    for part in ("data        audiofolder", "train 8 clips", "classes     2 (no, yes); 2-2 training clips per class",
                 "skipped     0", "model       ast-tiny", "effective batch 4", "steps       1 per fold",
                 f"output      {tmp_path / 'run'}", f"results {tmp_path / 'run' / 'results.json'}",
                 f"card: {tmp_path / 'run' / 'fold1' / 'README.md'}"):  # fmt: skip
        assert part in summary, (part, summary)


def test_long_clips_cut_by_ast_max_length_are_counted_in_the_summary(tmp_path, caplog):
    import logging

    from .audio_fixtures import write_audiofolder

    data = write_audiofolder(tmp_path / "long", ["yes", "no"], 3, seconds=30.0, extra_rows=())
    argv = train_flags(data, tmp_path / "run", "--max_steps", "1", "--save_strategy", "no")
    argv[argv.index("--ast_max_length") + 1] = "100"
    with caplog.at_level(logging.INFO, logger="hf_add.runs"):
        assert main(argv) == 0
    assert (
        "input       100 frames (1.00 s), --ast_max_length: 6 of 6 clips are longer and are cut (longest 30.0 s)"
        in run_summary(caplog)
    )


def test_a_75_step_run_logs_the_training_loss_at_least_20_times(clips, tmp_path):
    from hf_add.runs import run
    from hf_add.trainer import ADDTrainer

    histories = []

    class Recording(ADDTrainer):
        def train(self, *args, **kwargs):
            output = super().train(*args, **kwargs)
            histories.append(self.state.log_history)
            return output

    config = parse_config(
        train_flags(clips, tmp_path / "run", "--max_steps", "75", "--save_strategy", "no")[1:]
    )
    assert config.training.logging_steps == 500  # Trainer's default, left as it is
    run(config, trainer_class=Recording)
    losses = [entry["loss"] for entry in histories[0] if "loss" in entry]
    assert len(losses) >= 20, histories[0]


def test_time_mask_longer_than_the_fitted_input_is_refused(tmp_path):
    from .audio_fixtures import write_audiofolder

    data = write_audiofolder(tmp_path / "short", ["yes", "no"], 4, seconds=0.5)
    argv = train_flags(data, tmp_path / "run", "--max_steps", "1", "--time_mask", "60")
    argv.remove("--ast_max_length"), argv.remove("40")
    with pytest.raises(ValueError, match=r"--time_mask must be ≥ 0 and at most the model's 48 input frames"):
        main(argv)


# ---- --help that helps ----


def test_train_help_is_short_explains_every_hf_add_flag_and_hides_the_refused_ones(capsys):
    import dataclasses

    from hf_add.runs import SETTINGS

    assert main(["train", "--help"]) == 0
    text = capsys.readouterr().out
    assert len(text.splitlines()) < 150
    options = re.findall(r"^  (--\w+)(?: (\S+))?(?: +(\S.*))?$", text, flags=re.M)
    helped = {flag for flag, _, help_text in options}
    own = [
        f"--{f.name}"
        for name, group in SETTINGS.items()
        if name != "training"
        for f in dataclasses.fields(group)
    ]
    assert set(own) <= helped and text.index("--model_name_or_path") < text.index(
        "--output_dir"
    )  # ours first
    for field_name in own:  # every one has a help text (on its line, or on the next when the flag is long)
        line = re.search(rf"^  {field_name} \S+(.*)\n(.*)", text, flags=re.M)
        assert line and (line.group(1).strip() or line.group(2).strip()), field_name
    for refused in ("--optim ", "--lr_scheduler_type"):
        assert refused not in text.replace("Trainer's --optim and --lr_scheduler_type are", "")
    assert "--help_all" in text and "--resume_from_checkpoint" in text


def test_help_all_lists_trainer_flags_but_not_the_refused_ones(capsys):
    assert main(["train", "--help_all"]) == 0
    text = capsys.readouterr().out
    assert len(text.splitlines()) > 300 and "--gradient_checkpointing" in text
    assert not re.search(r"^\s+--(optim|lr_scheduler_type)\b", text, flags=re.M)


@pytest.mark.parametrize("module", ["hf_add.research.pretrain", "hf_add.research.study"])
def test_research_help_states_duration_defaults_and_outputs(module, capsys):
    import importlib

    with pytest.raises(SystemExit) as exit_code:
        importlib.import_module(module).main(["--help"])
    assert exit_code.value.code == 0
    text = capsys.readouterr().out
    assert "duration on a 2-core CPU" in text and re.search(r"about \d+ min", text)
    assert "output layout" in text and "(default: " in text
    assert (
        ("heatmaps.png" in text and "runs.csv" in text) if module.endswith("study") else "training/" in text
    )
