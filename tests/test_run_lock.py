"""hf_add.run_lock: a run owns its output directory."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time

import pytest

from hf_add.run_lock import LOCK_NAME, RunDirectoryLocked, run_lock

from .audio_fixtures import write_audiofolder
from .tiny import REPO_ROOT

# Waits until a shared start time, takes the lock, holds it a while; prints "won" or the refusal.
CONTENDER = """
import sys, time
from hf_add.run_lock import RunDirectoryLocked, run_lock
time.sleep(max(0.0, float(sys.argv[2]) - time.time()))
try:
    with run_lock(sys.argv[1]):
        print("won", flush=True)
        time.sleep(2.0)
except RunDirectoryLocked as error:
    print(error, flush=True)
    sys.exit(3)
"""


def _env():
    return {**os.environ, "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1"}


def test_two_runs_started_together_exactly_one_wins(tmp_path):
    directory = tmp_path / "run"  # does not exist yet: both create it
    start = f"{time.time() + 1.5}"
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", CONTENDER, str(directory), start],
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outcomes = [(p.wait(timeout=60), p.stdout.read().strip(), p.stderr.read(), p.pid) for p in processes]
    assert sorted(code for code, *_ in outcomes) == [0, 3], outcomes
    (winner,) = [o for o in outcomes if o[0] == 0]
    (loser,) = [o for o in outcomes if o[0] == 3]
    assert winner[1] == "won"
    assert f"is in use by another run: PID {winner[3]} on host {socket.gethostname()}" in loser[1]
    assert len(loser[1].splitlines()) == 1
    assert not (directory / LOCK_NAME).exists()  # released by the winner


def _refusal(directory) -> str:
    with pytest.raises(RunDirectoryLocked) as refused, run_lock(directory):
        pass
    (line,) = str(refused.value).splitlines()
    return line


def test_second_lock_refused_naming_the_holder_then_free_after_exception(tmp_path):
    with (
        pytest.raises(RuntimeError, match="boom"),
        run_lock(tmp_path, command=["hf-add", "train", "--output_dir", "x"]),
    ):
        holder = json.loads((tmp_path / LOCK_NAME).read_text())
        assert (holder["pid"], holder["host"]) == (os.getpid(), socket.gethostname())
        assert holder["command"] == "hf-add train --output_dir x" and holder["started"]
        assert re.search(rf"in use by another run: PID {os.getpid()} .*--output_dir x", _refusal(tmp_path))
        raise RuntimeError("boom")
    assert not (tmp_path / LOCK_NAME).exists()
    with run_lock(tmp_path):  # free again
        pass
    assert list(tmp_path.iterdir()) == []


def _write_lock(directory, **holder):
    directory.mkdir(parents=True, exist_ok=True)
    (directory / LOCK_NAME).write_text(json.dumps(holder))
    return directory / LOCK_NAME


def test_stale_lock_is_named_and_never_broken(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    lock = _write_lock(tmp_path, host=socket.gethostname(), pid=dead.pid, started="2026-01-01T10:00:00+00:00")
    message = (
        rf"stale lock from PID {dead.pid} on host {socket.gethostname()}, started 2026-01-01T10:00:00\+00:00; "
        rf"that process is gone: delete {lock} if no run uses this directory"
    )
    for _ in range(2):  # refused each time: the lock stays until the user deletes it
        assert re.search(message, _refusal(tmp_path))
        assert lock.exists()

    # a live PID that belongs to another process than the one that took the lock (PID reuse)
    _write_lock(tmp_path, host=socket.gethostname(), pid=os.getpid(), started="s", process_start=-1)
    if os.path.exists(f"/proc/{os.getpid()}/stat"):
        assert re.search("stale lock.*now belongs to another process", _refusal(tmp_path))


def test_lock_from_another_host_or_unreadable_is_named(tmp_path):
    lock = _write_lock(tmp_path, host="elsewhere.example", pid=1234, started="s")
    assert re.search(r"locked by PID 1234 on host elsewhere\.example.*cannot be checked", _refusal(tmp_path))
    lock.write_text('{"host": "h", "pi')  # half-written, or a crash while writing it
    assert re.search(rf"cannot be read.*delete {lock} if no run", _refusal(tmp_path))


def test_lock_in_a_directory_that_does_not_exist_yet(tmp_path):
    directory = tmp_path / "a" / "b"
    with run_lock(directory) as lock:
        assert os.path.isfile(lock) and os.path.dirname(lock) == str(directory)
    assert not (tmp_path / "a").exists()  # created for the run and left empty: removed
    with run_lock(directory):
        (directory / "results.json").write_text("{}")
    assert sorted(p.name for p in directory.iterdir()) == ["results.json"]


def test_train_refuses_a_locked_output_dir_at_once_and_writes_nothing(tmp_path):
    data = write_audiofolder(tmp_path / "data", ["yes", "no"], n_per_label=2, seconds=0.2)
    output = tmp_path / "run"
    command = [os.path.join(os.path.dirname(sys.executable), "hf-add"), "train"]
    command += ["--model_name_or_path", "ast-tiny", "--dataset_name", "audiofolder", "--data_dir", str(data)]
    command += ["--fold_column", "fold", "--max_steps", "1", "--output_dir", str(output), "--use_cpu", "true"]
    with run_lock(output, command=["hf-add", "train", "--output_dir", str(output)]):
        result = subprocess.run(command, env=_env(), capture_output=True, text=True, timeout=300)
        assert sorted(p.name for p in output.iterdir()) == [LOCK_NAME]
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(
        f"hf-add train: error: {output} is in use by another run: PID {os.getpid()} on host"
    )
    assert "Loading" not in result.stdout + result.stderr
    assert not output.exists()


def test_torchrun_refused_on_process_0_and_no_process_writes(tmp_path):
    """Under torchrun only process 0 takes the lock; the others wait for it, so a refused run writes nothing."""
    data = write_audiofolder(tmp_path / "data", ["yes", "no"], n_per_label=2, seconds=0.2)
    output = tmp_path / "run"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_addr=127.0.0.1"]
    command += [f"--master_port={port}", "-m", "hf_add.cli", "train", "--model_name_or_path", "ast-tiny"]
    command += ["--dataset_name", "audiofolder", "--data_dir", str(data), "--fold_column", "fold"]
    command += ["--max_steps", "1", "--output_dir", str(output), "--use_cpu", "true", "--report_to", "none"]
    with run_lock(output):
        result = subprocess.run(
            command, env={**_env(), "CUDA_VISIBLE_DEVICES": ""}, capture_output=True, text=True, timeout=300
        )
        assert sorted(p.name for p in output.iterdir()) == [LOCK_NAME]
    assert result.returncode != 0
    assert f"is in use by another run: PID {os.getpid()}" in result.stderr
