"""The espeak-ng spoken-commands generator: format, speaker-disjoint partitions, determinism, atomic output."""

from __future__ import annotations

import csv
import math
import shutil
import stat
import wave
from pathlib import Path

import datasets
import numpy as np
import pytest

from hf_add.cli import main as cli_main
from hf_add.files import current_umask
from hf_add.spoken_commands import COLUMNS, make_spoken_commands, resample

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
WORDS = ["yes", "no", "marvin"]
SMALL = dict(words=WORDS, clips_per_word=4, num_voices=5, workers=2)


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    output = tmp_path_factory.mktemp("spoken") / "commands"
    make_spoken_commands(output, seed=0, **SMALL)
    return output


def read_metadata(directory: Path) -> list[dict]:
    with open(directory / "metadata.csv", newline="") as f:
        return list(csv.DictReader(f))


def files_of(directory: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()
    }


def test_clips_are_one_second_16khz_mono_with_metadata(small):
    rows = read_metadata(small)
    assert list(rows[0]) == list(COLUMNS)
    assert len(rows) == 12 and sorted({r["label"] for r in rows}) == sorted(WORDS)
    for row in rows:
        with wave.open(str(small / row["file_name"])) as f:
            assert (f.getframerate(), f.getnchannels(), f.getsampwidth(), f.getnframes()) == (
                16000,
                1,
                2,
                16000,
            )
            samples = np.frombuffer(f.readframes(16000), dtype="<i2")
        assert np.abs(samples).max() > 3000  # a word, not silence
        assert row["speaker"].startswith(row["voice"] + "-p")
    assert {r["fold"] for r in rows} == {"1", "2", "3", "4", "5"}
    assert {r["partition"] for r in rows} == {"train", "validation", "test"}
    assert stat.S_IMODE(small.stat().st_mode) == 0o777 & ~current_umask()


def test_no_voice_is_shared_between_partitions_or_folds(small):
    rows = read_metadata(small)
    by_voice = {}
    for row in rows:
        by_voice.setdefault(row["voice"], set()).add((row["partition"], row["fold"]))
    assert all(len(assignments) == 1 for assignments in by_voice.values())
    train = {r["voice"] for r in rows if r["partition"] == "train"}
    test = {r["voice"] for r in rows if r["partition"] == "test"}
    assert train and test and not train & test


def test_same_seed_same_bytes_other_seed_other_bytes(small, tmp_path):
    make_spoken_commands(tmp_path / "again", seed=0, **{**SMALL, "workers": 1})
    assert files_of(tmp_path / "again") == files_of(small)
    make_spoken_commands(tmp_path / "other", seed=1, **SMALL)
    other = files_of(tmp_path / "other")
    assert other.keys() == files_of(small).keys()
    assert all(other[name] != data for name, data in files_of(small).items() if name.endswith(".wav"))


def test_loads_with_audiofolder(small):
    dataset = datasets.load_dataset("audiofolder", data_dir=str(small), split="train")
    assert set(dataset.column_names) == {"audio", *COLUMNS} - {"file_name"}
    samples = dataset[0]["audio"].get_all_samples()
    assert samples.sample_rate == 16000 and tuple(samples.data.shape) == (1, 16000)
    assert dataset[0]["label"] == read_metadata(small)[0]["label"]


def test_refuses_to_overwrite_and_replaces_atomically(small, tmp_path):
    target = tmp_path / "commands"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError):
        make_spoken_commands(target, seed=0, **SMALL)
    assert [p.name for p in target.iterdir()] == ["keep.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["commands"]  # no temp dir left behind
    make_spoken_commands(target, seed=0, overwrite=True, **SMALL)
    assert files_of(target) == files_of(small)
    assert [p.name for p in tmp_path.iterdir()] == ["commands"]


def test_command_line(tmp_path, capsys):
    argv = ["make-dataset", "--output_dir", str(tmp_path / "out"), "--words", "up", "down"]
    argv += ["--clips_per_word", "3", "--num_voices", "5", "--noise_snr_db_range", "inf", "inf"]
    assert cli_main(argv) == 0
    assert "wrote 6 clips" in capsys.readouterr().out
    assert len(read_metadata(tmp_path / "out")) == 6
    with pytest.raises(FileExistsError):
        cli_main(argv)


def test_resample_keeps_a_tone():
    t = np.arange(22050) / 22050
    y = resample(np.sin(2 * np.pi * 440 * t), 22050, 16000)
    assert y.size == 16000
    reference = np.sin(2 * np.pi * 440 * np.arange(16000) / 16000)
    assert np.abs(y - reference)[100:-100].max() < 1e-2


def test_words_named_like_splits_keep_their_metadata(tmp_path):
    """datasets reads a file named "…_train.wav" as the train split's: a word must not reach file names."""
    make_spoken_commands(tmp_path / "out", words=["train", "test"], clips_per_word=5, num_voices=5,
                         noise_snr_db_range=(math.inf, math.inf))  # fmt: skip
    data = datasets.load_dataset("audiofolder", data_dir=str(tmp_path / "out"))
    assert list(data) == ["train"] and len(data["train"]) == 10
    assert sorted(set(data["train"]["label"])) == ["test", "train"]
