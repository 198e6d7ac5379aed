"""Runs that never fail silently: reruns, resumes, a killed run, bad arguments, the examples as printed."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from hf_add.cli import main, usage
from hf_add.run_lock import LOCK_NAME, RunDirectoryLocked

from .audio_fixtures import write_audiofolder

README = Path(__file__).parent.parent / "README.md"
QUICK = ["--report_to", "none", "--use_cpu", "true", "--disable_tqdm", "true", "--seed", "0"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_audiofolder(
        tmp_path_factory.mktemp("reliability") / "data", ["yes", "no", "up"], 6, seconds=0.3
    )


def train_argv(data, output, *extra) -> list[str]:
    return [
        "train", "--model_name_or_path", "ast-tiny", "--ast_max_length", "40",
        "--dataset_name", "audiofolder", "--data_dir", str(data), "--fold_column", "fold", "--cv_folds", "1",
        "--loss", "add", "--per_device_train_batch_size", "4", "--output_dir", str(output), *QUICK, *extra,
    ]  # fmt: skip


def strict_json(path: Path):
    """json.loads that refuses NaN / Infinity, as any non-Python parser does."""
    return json.loads(path.read_text(), parse_constant=lambda name: pytest.fail(f"{path} holds {name}"))


def test_rerun_into_a_finished_run_is_refused_then_kept_or_overwritten(data, tmp_path):
    out = tmp_path / "run"
    argv = train_argv(data, out, "--max_steps", "2", "--save_strategy", "no")
    assert main(argv) == 0
    finished = (out / "results.json").read_bytes()
    with pytest.raises(
        ValueError, match=r"already holds a run.*--resume_from_checkpoint true.*--overwrite_output_dir"
    ):
        main(argv)
    assert (out / "results.json").read_bytes() == finished  # nothing was touched
    main([*argv, "--resume_from_checkpoint", "true"])  # the finished fold is kept, not trained again
    assert strict_json(out / "results.json")["folds"] == json.loads(finished)["folds"]
    with pytest.raises(ValueError, match=r"started with other arguments \(--loss: 'add' then, 'ce' now"):
        main([*argv, "--resume_from_checkpoint", "true", "--loss", "ce"])
    assert strict_json(out / "results.json")["arguments"]["loss"]["loss"] == "add"
    assert main([*argv, "--overwrite_output_dir", "true", "--max_steps", "3"]) == 0
    assert strict_json(out / "results.json")["arguments"]["training"]["max_steps"] == 3


def test_bad_arguments_stop_before_anything_is_written(data, tmp_path):
    out = tmp_path / "run"
    cases = {
        "--max_eval_samples must be at least 1": ["--max_eval_samples", "0"],
        "no model directory '/no/such/dir'": ["--model_name_or_path", "/no/such/dir"],
        "instead of --lr_scheduler_type": ["--lr_scheduler_type", "cosine"],
        "instead of --optim, --lr_scheduler_type": ["--optim", "sgd", "--lr_scheduler_type", "cosine"],
        "use --warmup_epochs instead of --warmup_steps": ["--warmup_steps", "5"],
        "not a complete checkpoint of this run's folds": ["--resume_from_checkpoint", str(tmp_path)],
        r"--loss must be ce, focal, opl or add": ["--loss", "arcface"],
        "would choose the model on the test split": ["--load_best_model_at_end", "true",
                                                     "--eval_strategy", "epoch", "--save_strategy", "epoch"],
    }  # fmt: skip
    for message, extra in cases.items():
        with pytest.raises(ValueError, match=message):
            main(train_argv(data, out, *extra))
        assert not out.exists(), extra


def test_two_classes_give_strict_json_with_null_for_undefined_values(tmp_path):
    two = write_audiofolder(tmp_path / "two", ["yes", "no"], 4, seconds=0.3)
    out = tmp_path / "run"
    assert main(train_argv(two, out, "--max_steps", "1", "--save_strategy", "no")) == 0
    results = strict_json(out / "results.json")
    # one class pair: the CV across class pairs is undefined; one fold: no standard deviation
    assert results["folds"][0]["inter_class_cv"] is None and results["std"]["accuracy"] is None
    assert results["mean"]["accuracy"] == results["folds"][0]["accuracy"]


def weights(model_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(str(model_dir / "model.safetensors"))


def hf_add_process(*argv: str) -> subprocess.Popen:
    """`hf-add` in its own process; every run of a comparison runs so (same threads, same arithmetic)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "hf_add.cli", *argv],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def killed_once_written(argv: list[str], checkpoint: Path) -> subprocess.Popen:
    """`hf-add ARGV` started, and killed with SIGKILL as soon as ``checkpoint`` is complete (its trainer state
    is written last)."""
    process = hf_add_process(*argv)
    written = checkpoint / "trainer_state.json"
    deadline = time.monotonic() + 240
    while not written.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, process.stderr.read().decode()[-2000:]
    return process


def assert_same_weights(model_dir: Path, expected_dir: Path) -> None:
    """Bit for bit: the weights saved in ``model_dir`` are those in ``expected_dir``."""
    expected, got = weights(expected_dir), weights(model_dir)
    assert expected.keys() == got.keys()
    for name in expected:
        torch.testing.assert_close(got[name], expected[name], rtol=0, atol=0, msg=name)


def finishes(process: subprocess.Popen) -> bool:
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr.decode()[-3000:]
    return True


def test_killed_run_resumed_ends_with_the_weights_of_an_uninterrupted_run(data, tmp_path):
    """SIGKILL after the second checkpoint, then --resume_from_checkpoint true: same final weights."""
    steps = ["--max_steps", "40", "--save_strategy", "steps", "--save_steps", "1", "--learning_rate", "0.001"]
    uninterrupted, killed = tmp_path / "uninterrupted", tmp_path / "killed"
    assert finishes(hf_add_process(*train_argv(data, uninterrupted, *steps)))

    process = killed_once_written(train_argv(data, killed, *steps), killed / "fold1" / "checkpoint-2")
    assert not (killed / "results.json").exists()

    lock = (
        killed / LOCK_NAME
    )  # the killed run's lock is named as stale, and deleted by the user, not the next run
    with pytest.raises(
        RunDirectoryLocked, match=rf"stale lock from PID {process.pid} .*delete {lock} if no run"
    ):
        main(train_argv(data, killed, *steps))
    lock.unlink()
    with pytest.raises(ValueError, match="already holds a run"):
        main(train_argv(data, killed, *steps))
    assert finishes(hf_add_process(*train_argv(data, killed, *steps, "--resume_from_checkpoint", "true")))
    assert_same_weights(killed / "fold1", uninterrupted / "fold1")


def usage_examples(text: str) -> list[list[str]]:
    """The `hf-add ...` commands of a text, continuation lines joined."""
    joined = re.sub(r"\\\n\s*", " ", text)
    return [
        shlex.split(line.strip())[1:] for line in joined.splitlines() if line.strip().startswith("hf-add ")
    ]


def test_the_examples_of_help_and_readme_run_as_printed(tmp_path, monkeypatch):
    examples = usage_examples(usage().split("example (offline):", 1)[1])
    assert [argv[0] for argv in examples] == ["make-dataset", "train", "evaluate"]
    readme_example = README.read_text().split("Offline, end to end", 1)[1].split("```", 2)[1]
    assert usage_examples(readme_example) == examples  # the README's CLI section shows the same example
    monkeypatch.chdir(tmp_path)
    scaled_down = {  # options appended (the last occurrence wins): fewer clips and steps, nothing else
        "make-dataset": ["--words", "yes", "no", "up", "--clips_per_word", "24", "--num_voices", "8"],
        "train": ["--max_steps", "2", "--save_strategy", "no", "--per_device_train_batch_size", "8", *QUICK],
        "evaluate": [],
    }
    for argv in examples:
        assert main([*argv, *scaled_down[argv[0]]]) == 0, argv
    assert (tmp_path / "runs/ast-add/geometry.png").exists()


def test_unusable_clips_of_every_split_are_named_in_one_error(tmp_path):
    root = tmp_path / "data"
    for split in ("train", "test"):
        bad = [{"file_name": f"bad_{split}.wav", "label": "yes", "fold": 1, "bytes": b"not audio"}]
        write_audiofolder(root / split, ["yes", "no"], 3, seconds=0.3, extra_rows=bad)
    argv = ["train", "--model_name_or_path", "ast-tiny", "--dataset_name", "audiofolder", "--data_dir", str(root),
            "--test_split", "test", "--output_dir", str(tmp_path / "run"), *QUICK]  # fmt: skip
    with pytest.raises(ValueError, match=r"(?s)2 clip\(s\) cannot be used:.*bad_train\.wav.*bad_test\.wav"):
        main(argv)


def test_the_executable_reports_a_mistake_in_one_line(tmp_path):
    process = hf_add_process("train", "--model_name_or_path", "/no/such/dir", "--dataset_name", "audiofolder",
                             "--data_dir", str(tmp_path), "--output_dir", str(tmp_path / "run"))  # fmt: skip
    _, stderr = process.communicate(timeout=300)
    lines = stderr.decode().strip().splitlines()
    assert process.returncode == 2 and lines[-1].startswith("hf-add train: error: no model directory")
    assert "Traceback" not in stderr.decode()
