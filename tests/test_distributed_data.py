"""The data path with many processes and many nodes: preprocessing once per machine, in parallel workers, and
features on the training device. The workers record what each process decoded and computed
(``tests/workers/preprocess_worker.py``)."""

from __future__ import annotations

import json
from pathlib import Path

from .audio_fixtures import write_audiofolder
from .tiny import torchrun_on_cpu

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
