"""The data path with many processes and many nodes: preprocessing once per machine, in parallel workers, and
features on the training device. The workers record what each process decoded and computed
(``tests/workers/preprocess_worker.py``)."""

from __future__ import annotations

import functools
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from datasets import load_dataset
from transformers import ASTFeatureExtractor

from hf_add.data import AudioClassificationCollator, get_spec, make_folds
from hf_add.runs import RunConfig, check_config, run

from .audio_fixtures import write_audiofolder
from .test_data import BAD_CLIPS
from .tiny import REPO_ROOT, torchrun_on_cpu

WORDS = ["yes", "no", "up"]


def run_flags(data: Path, output: Path, *extra: str) -> list[str]:
    """``hf-add train`` flags: ast-tiny on the first fold of a 2-fold audiofolder, one step."""
    flags = ["--model_name_or_path", "ast-tiny", "--ast_max_length", "100", "--dataset_name", "audiofolder"]
    flags += ["--data_dir", str(data), "--fold_column", "fold", "--cv_folds", "1", "--max_steps", "1"]
    flags += [
        "--output_dir",
        str(output),
        "--use_cpu",
        "true",
        "--report_to",
        "none",
        "--save_strategy",
        "no",
    ]
    return flags + ["--disable_tqdm", "true", *extra]


def lines(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


def test_torchrun_decodes_and_computes_features_once_and_every_rank_trains_on_the_same_data(tmp_path):
    data = write_audiofolder(tmp_path / "data", WORDS, n_per_label=6, seconds=0.5)
    record = tmp_path / "record"
    record.mkdir()
    flags = run_flags(data, tmp_path / "run", "--per_device_train_batch_size", "4")
    flags += ["--preprocessing_num_workers", "2"]  # started by the process that preprocesses, only
    torchrun_on_cpu(
        "tests.workers.preprocess_worker",
        str(record),
        *flags,
        env={"HF_DATASETS_CACHE": str(tmp_path / "cache")},
    )
    clips = sorted(p.name for p in data.glob("*.wav"))
    assert sorted(lines(record / "decoded_rank0.txt")) == clips  # every clip once, by the local main process
    assert lines(record / "decoded_rank1.txt") == []
    assert sum(map(int, lines(record / "features_rank0.txt"))) == len(clips)
    assert lines(record / "features_rank1.txt") == []
    rank0, rank1 = (json.loads((record / f"data_rank{r}.json").read_text()) for r in (0, 1))
    assert rank0 == rank1  # the same features and labels, read from the same cache file
    assert rank0["rows"] == 9


def preprocess(root: Path, cache: Path, num_proc: int | None, skip_corrupt: bool):
    """``make_folds`` as ``hf-add train`` calls it, on a fresh cache: the folds (features cached) and skipped clips."""
    data = load_dataset("audiofolder", data_dir=str(root), cache_dir=str(cache))
    extractor = ASTFeatureExtractor(num_mel_bins=128, max_length=100, sampling_rate=16000)
    features = AudioClassificationCollator(extractor, num_labels=0)
    prepare = functools.partial(features.cache_split, num_proc=num_proc)
    spec = get_spec(path="audiofolder", fold_column="fold")
    return make_folds(data, spec, skip_corrupt=skip_corrupt, prepare_split=prepare, num_proc=num_proc)


def test_preprocessing_workers_give_the_waveforms_features_and_errors_of_one_process(tmp_path):
    extra = [
        {"file_name": name, "label": WORDS[i % 3], "fold": 1 + i % 2, **written}
        for i, (name, (written, _)) in enumerate(BAD_CLIPS.items())
    ]
    root = write_audiofolder(tmp_path / "data", WORDS, n_per_label=10, seconds=0.3, extra_rows=extra)
    errors = {}
    for num_proc in (None, 2):
        with pytest.raises(ValueError, match="--skip_corrupt") as error:
            preprocess(root, tmp_path / f"refused{num_proc}", num_proc, skip_corrupt=False)
        errors[num_proc] = str(error.value)
    assert errors[None] == errors[2]
    assert all(name in errors[2] for name in BAD_CLIPS)
    (one, skipped_one), (two, skipped_two) = (
        preprocess(root, tmp_path / f"cache{num_proc}", num_proc, skip_corrupt=True) for num_proc in (None, 2)
    )
    assert skipped_one == skipped_two and len(skipped_two) == len(BAD_CLIPS)
    assert [fold.name for fold in one] == [fold.name for fold in two]
    for fold_one, fold_two in zip(one, two, strict=True):
        for part in ("train", "test"):
            a, b = getattr(fold_one, part).with_format("numpy"), getattr(fold_two, part).with_format("numpy")
            assert len(a) == len(b) > 0
            assert [row["path"] for row in a["audio"]] == [row["path"] for row in b["audio"]]
            assert np.array_equal(a["labels"], b["labels"])
            for column in ("waveform", "input_values"):  # the same bits, row for row
                assert all(np.array_equal(x, y) for x, y in zip(a[column], b[column], strict=True))
    two_files = {Path(f["filename"]).name for f in two[0].train.cache_files}
    assert any("_of_00002" in name for name in two_files)  # it did run in 2 processes


def test_preprocessing_workers_must_be_at_least_one(tmp_path):
    config = RunConfig.from_values(
        {"model_name_or_path": "ast-tiny", "dataset_name": "audiofolder", "output_dir": str(tmp_path),
         "preprocessing_num_workers": 0}
    )  # fmt: skip
    with pytest.raises(ValueError, match="--preprocessing_num_workers must be at least 1"):
        check_config(config)


def test_features_on_the_cpu_device_train_as_the_default_path(tmp_path):
    """``--feature_device cpu`` runs the device path (the batched fbank of each mixup batch, placed by the
    collator): the same weights and metrics as without it."""
    data = write_audiofolder(tmp_path / "data", WORDS, n_per_label=4, seconds=0.5)
    results, weights = {}, {}
    for device in (None, "cpu"):
        values = {
            "model_name_or_path": "ast-tiny", "ast_max_length": 100, "dataset_name": "audiofolder",
            "data_dir": str(data), "fold_column": "fold", "cv_folds": 1, "mixup": 0.5, "freq_mask": 8,
            "max_steps": 2, "per_device_train_batch_size": 4, "output_dir": str(tmp_path / f"run_{device}"),
            "use_cpu": True, "report_to": "none", "save_strategy": "no", "disable_tqdm": True,
        }  # fmt: skip
        if device:
            values["feature_device"] = device
        result = run(RunConfig.from_values(values))
        results[device] = {
            k: v for k, v in result.folds[0].items() if "runtime" not in k and "per_second" not in k
        }
        weights[device] = (Path(result.model_dir()) / "model.safetensors").read_bytes()
    assert results[None] == results["cpu"]
    assert weights[None] == weights["cpu"]


@pytest.mark.parametrize(
    "values, message",
    [
        ({"feature_device": "cuda"}, "--feature_device cuda, but the model trains on cpu"),
        ({"feature_device": "cuda", "dataloader_num_workers": 2}, "leave out --dataloader_num_workers 2"),
        ({"feature_device": "gpu0"}, "--feature_device 'gpu0' is not a device"),
    ],
)
def test_features_on_a_device_are_refused_where_they_cannot_work(tmp_path, values, message):
    config = RunConfig.from_values(
        {"model_name_or_path": "ast-tiny", "dataset_name": "audiofolder", "output_dir": str(tmp_path),
         "use_cpu": True, **values}
    )  # fmt: skip
    with pytest.raises(ValueError, match=message):
        check_config(config)


WORKER = ["-m", "tests.workers.preprocess_worker"]


def worker_env(cache: Path) -> dict[str, str]:
    return {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1", "HF_DATASETS_CACHE": str(cache)}


@pytest.fixture(scope="module")
def one_process(tmp_path_factory):
    """The data folder, and what one process recorded training on the global batch of 8 clips."""
    root = tmp_path_factory.mktemp("one_process")
    data = write_audiofolder(root / "data", WORDS, n_per_label=6, seconds=0.5)
    record = root / "record"
    record.mkdir()
    flags = run_flags(data, root / "run", "--per_device_train_batch_size", "8")
    command = [sys.executable, *WORKER, str(record), *flags]
    result = subprocess.run(
        command, env=worker_env(root / "cache"), cwd=REPO_ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return data, torch.load(record / "grads_rank0.pt")


@pytest.mark.parametrize("caches", ["per node", "shared"])
def test_two_nodes_preprocess_once_per_node_and_step_as_one_process_on_the_global_batch(
    tmp_path, one_process, caches
):
    """Two launchers, ``--nnodes 2 --node_rank 0/1``, one process each, rendezvous on localhost. With a datasets
    cache per node (local disks) each node decodes every clip once; with one shared cache, node 0 alone does."""
    data, expected = one_process
    record = tmp_path / "record"
    record.mkdir()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    flags = run_flags(data, tmp_path / "run", "--per_device_train_batch_size", "4")
    launchers = []
    for node in (0, 1):
        launcher = [sys.executable, "-m", "torch.distributed.run", "--nnodes=2", "--nproc_per_node=1"]
        launcher += [f"--node_rank={node}", "--master_addr=127.0.0.1", f"--master_port={port}"]
        cache = tmp_path / ("cache" if caches == "shared" else f"cache_node{node}")
        launchers.append(
            subprocess.Popen(
                [*launcher, *WORKER, str(record), *flags],
                env=worker_env(cache),
                cwd=REPO_ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    for launcher in launchers:
        output, _ = launcher.communicate(timeout=300)
        assert launcher.returncode == 0, output[-3000:]
    clips = sorted(p.name for p in data.glob("*.wav"))
    assert sorted(lines(record / "decoded_rank0.txt")) == clips
    assert sorted(lines(record / "decoded_rank1.txt")) == (clips if caches == "per node" else [])
    for rank in (0, 1):  # after DDP's all-reduce, every process holds the gradient of the global batch
        step = torch.load(record / f"grads_rank{rank}.pt")
        assert torch.equal(step["labels"], expected["labels"])
        assert step["grads"].keys() == expected["grads"].keys()
        for name, grad in expected["grads"].items():
            torch.testing.assert_close(step["grads"][name], grad, rtol=1e-4, atol=1e-6, msg=name)
