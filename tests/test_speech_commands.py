"""KS2 (Speech Commands v2) on replicas of its two real layouts: the Hub's Parquet conversion branch and the
original archive (word folders + validation_list.txt / testing_list.txt), which alone gives the paper's
test set."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import replace

import numpy as np
import pytest
import soundfile as sf
from datasets import Audio, ClassLabel, Dataset, Features, Value, load_dataset

from hf_add.commands.train import main, parse_config
from hf_add.data import PRESETS, get_spec, make_folds
from hf_add.data.presets import (
    KS2_ARCHIVE_TEST_SET,
    KS2_HUB_TEST_SET,
    SPEECH_COMMANDS_ARCHIVE,
    SPEECH_COMMANDS_WORDS,
    card_dataset,
)
from hf_add.data.speech_commands_archive import archive_split_files, split_clips
from hf_add.research.table2 import main as table2_main
from hf_add.runs import RunConfig

# The ClassLabel names of google/speech_commands (its loading script): 10 commands, the other words, silence.
COMMANDS = ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"]
OTHER_V1 = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
OTHER_V1 += ["bed", "bird", "cat", "dog", "happy", "house", "marvin", "sheila", "tree", "wow"]
OTHER_V2 = [*OTHER_V1, "backward", "forward", "follow", "learn", "visual"]
LABELS_V1 = [*COMMANDS, *OTHER_V1, "_silence_"]  # 31 names; id 30 is _silence_
LABELS_V2 = [*COMMANDS, *OTHER_V2, "_silence_"]  # 36 names; id 30 is backward

# The real v0.02 archive: 105,829 word clips; validation_list.txt has 9,981 lines, testing_list.txt 11,005.
REAL_TOTAL, REAL_VALIDATION, REAL_TEST = 105_829, 9_981, 11_005
PAPER_TRAIN = 84_843  # §4.1: "84,843, 9,981 and 11,005 clips"


def noise(seconds: float, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-0.3, 0.3, int(16000 * seconds)).astype(np.float32)


def write_parquet_branch(root) -> None:
    """refs/convert/parquet of google/speech_commands: <config>/<split>/NNNN.parquet, no README.

    Train and validation hold every label (word clips and `_silence_` noise chunks); test is the 12-class
    test archive's kind of content: the 10 commands, two other words and silence. Train has two shards.
    """
    for config, names in (("v0.01", LABELS_V1), ("v0.02", LABELS_V2)):
        features = Features(
            {
                "file": Value("string"),
                "audio": Audio(sampling_rate=16000),
                "label": ClassLabel(names=names),
                "is_unknown": Value("bool"),
                "speaker_id": Value("string"),
                "utterance_id": Value("int8"),
            }
        )
        test_names = [*COMMANDS, "bed", names[30], "_silence_"]
        shards = {
            "train/0000": names[:20],
            "train/0001": names[20:],
            "validation/0000": names,
            "test/0000": test_names,
        }
        for shard, labels in shards.items():
            rows = [
                {
                    "file": f"{word}/{i:08x}_nohash_0.wav",
                    "audio": {"array": noise(0.03, i), "sampling_rate": 16000},
                    "label": names.index(word),
                    "is_unknown": word not in COMMANDS and word != "_silence_",
                    "speaker_id": None if word == "_silence_" else f"{i:08x}",
                    "utterance_id": 0,
                }
                for i, word in enumerate(labels)
            ]
            os.makedirs(root / config / os.path.dirname(shard), exist_ok=True)
            Dataset.from_list(rows, features=features).to_parquet(str(root / config / f"{shard}.parquet"))


def write_archive(root, clips_per_word: int = 3):
    """An extracted speech_commands_v0.02.tar.gz: per word speakers s0.. (clip 0 of a word is listed in
    validation_list.txt, clip 1 in testing_list.txt, the rest are train), _background_noise_, README."""
    validation, test = [], []
    for w, word in enumerate(SPEECH_COMMANDS_WORDS):
        os.makedirs(root / word)
        for k in range(clips_per_word):
            path = f"{word}/{w:04x}{k:04x}_nohash_0.wav"
            sf.write(root / path, noise(0.05, w * 10 + k), 16000, subtype="PCM_16")
            if k == 0:
                validation.append(path)
            elif k == 1:
                test.append(path)
    os.makedirs(root / "_background_noise_")
    sf.write(root / "_background_noise_" / "white_noise.wav", noise(0.05, 999), 16000)
    (root / "_background_noise_" / "README.md").write_text("noise\n")
    (root / "README.md").write_text("Speech Commands Data Set v0.02\n")
    (root / "validation_list.txt").write_text("".join(f"{p}\n" for p in validation))
    (root / "testing_list.txt").write_text("".join(f"{p}\n" for p in test))
    return root


@pytest.fixture(scope="module")
def branch(tmp_path_factory):
    root = tmp_path_factory.mktemp("speech_commands_parquet")
    write_parquet_branch(root)
    return root


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    return write_archive(tmp_path_factory.mktemp("speech_commands_v0.02"))


def word_of(dataset: Dataset) -> list[str]:
    return [path.split("/")[0] for path in dataset["file"]]


def test_parquet_branch_knows_no_configs_and_merges_versions(branch):
    """What the real branch does with datasets >= 4: the issue's failure and mislabelling, on the replica."""
    with pytest.raises(ValueError, match=r"BuilderConfig 'v0.02' not found. Available: \['default'\]"):
        load_dataset(str(branch), "v0.02")
    merged = load_dataset(str(branch))["train"]
    assert merged.features["label"].names == LABELS_V1 and len(merged) == 31 + 36
    v2 = load_dataset(str(branch), data_dir="v0.02")
    assert v2["train"].features["label"].names == LABELS_V2
    assert {split: len(d) for split, d in v2.items()} == {"train": 36, "validation": 36, "test": 13}


def test_ks2_loads_the_hub_branch_v002_with_35_named_words(branch, caplog):
    spec = get_spec("ks2", path=str(branch))  # the Hub repository, here a local replica of its branch
    assert (spec.config_name, spec.data_dir, spec.revision) == (None, "v0.02", "refs/convert/parquet")
    with caplog.at_level(logging.WARNING, logger="hf_add.data.presets"):
        data = spec.load()
    assert "not the paper's test set" in caplog.text and "12-class test archive" in caplog.text
    (fold,), _ = make_folds(data, spec)
    assert list(fold.id2label.values()) == sorted(SPEECH_COMMANDS_WORDS) and len(fold.id2label) == 35
    assert (len(fold.train), len(fold.validation), len(fold.test)) == (35, 35, 12)  # _silence_ dropped
    for split in (fold.train, fold.validation, fold.test):  # label ids resolved by name: backward is backward
        assert [fold.id2label[i] for i in split["labels"]] == word_of(split)
    assert spec.test_set == KS2_HUB_TEST_SET and spec.substitute_test_set
    assert card_dataset(PRESETS["ks2"]) == ("google/speech_commands", "google/speech_commands (v0.02)")


def test_ks2_refuses_the_merged_default_configuration(branch):
    spec = replace(get_spec("ks2", path=str(branch)), data_dir=None)
    with pytest.raises(
        ValueError, match=r"31 names\) lacks \['backward', 'follow', 'forward', 'learn', 'visual'\]"
    ):
        make_folds(spec.load(), spec, check_clips=False)


def test_ks2_archive_gives_the_list_files_split(archive, caplog):
    spec = get_spec("ks2", data_dir=str(archive))
    assert spec.path == SPEECH_COMMANDS_ARCHIVE and spec.revision is None
    assert spec.test_set == KS2_ARCHIVE_TEST_SET and not spec.substitute_test_set
    with caplog.at_level(logging.WARNING, logger="hf_add.data.presets"):
        data = spec.load()
    assert "not the paper's" not in caplog.text
    lines = {
        name: (archive / f"{name}_list.txt").read_text().splitlines() for name in ("validation", "testing")
    }
    assert len(data["validation"]) == len(lines["validation"]) == 35
    assert len(data["test"]) == len(lines["testing"]) == 35
    assert len(data["train"]) == 3 * 35 - 35 - 35
    files = {split: set(d["file"]) for split, d in data.items()}
    assert set(lines["validation"]) == files["validation"] and set(lines["testing"]) == files["test"]
    assert not files["train"] & files["validation"] and not files["train"] & files["test"]
    assert not files["validation"] & files["test"]
    assert not any(path.startswith("_background_noise_") for paths in files.values() for path in paths)
    assert data["train"][0]["speaker_id"] == data["train"][0]["file"].split("/")[1][:8]

    (fold,), skipped = make_folds(data, spec)
    assert skipped == [] and list(fold.id2label.values()) == sorted(SPEECH_COMMANDS_WORDS)
    for split in (fold.train, fold.validation, fold.test):
        assert [fold.id2label[i] for i in split["labels"]] == word_of(split)
    assert all(len(w) == 800 for w in fold.test.with_format("numpy")["waveform"])  # decoded once, 16 kHz
    assert card_dataset(spec) == (None, archive.name)  # the folder, never a local path


def test_paper_split_arithmetic_on_the_real_list_counts():
    """The real archive's counts through the same split code: train = 105,829 - 9,981 - 11,005 = 84,843."""
    assert REAL_TOTAL - REAL_VALIDATION - REAL_TEST == PAPER_TRAIN
    clips = [f"word{i % 35}/{i:08x}_nohash_0.wav" for i in range(REAL_TOTAL)]
    order = np.random.default_rng(0).permutation(REAL_TOTAL)
    validation = [clips[i] for i in order[:REAL_VALIDATION]]
    test = [clips[i] for i in order[REAL_VALIDATION : REAL_VALIDATION + REAL_TEST]]
    splits = split_clips(clips, validation, test)
    assert {name: len(paths) for name, paths in splits.items()} == {
        "train": PAPER_TRAIN,
        "validation": REAL_VALIDATION,
        "test": REAL_TEST,
    }


def test_archive_problems_are_named(tmp_path, archive):
    with pytest.raises(ValueError, match=r"no testing_list\.txt.*--dataset_name DIR --data_dir v0\.02"):
        get_spec("ks2", data_dir=str(tmp_path))
    with pytest.raises(ValueError, match=r"in both validation_list\.txt and testing_list\.txt"):
        split_clips(["a/1.wav", "a/2.wav"], ["a/1.wav"], ["a/1.wav"])
    with pytest.raises(FileNotFoundError, match=r"named in testing_list\.txt are not in .*extract"):
        split_clips(["a/1.wav"], [], ["a/1.wav", "b/9.wav"])
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "testing_list.txt").write_text("yes/0.wav\n")
    with pytest.raises(FileNotFoundError, match=r"no validation_list\.txt"):
        archive_split_files(partial)


def test_cli_expresses_both_sources_and_results_record_the_test_set(archive, tmp_path):
    common = ["--dataset", "ks2", "--model_name_or_path", "ast-tiny", "--output_dir", str(tmp_path / "run")]
    hub = parse_config(common).data.spec()
    assert (hub.path, hub.data_dir, hub.test_set) == ("google/speech_commands", "v0.02", KS2_HUB_TEST_SET)
    assert parse_config([*common, "--data_dir", str(archive)]).data.spec().path == SPEECH_COMMANDS_ARCHIVE

    results = main(
        [
            *common, "--data_dir", str(archive), "--ast_max_length", "16", "--max_steps", "1",
            "--per_device_train_batch_size", "4", "--max_train_samples", "4", "--max_eval_samples", "4",
            "--report_to", "none", "--use_cpu", "true",
        ]
    )  # fmt: skip
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["test_set"] == saved["test_set"] == saved["dataset"]["test_set"] == KS2_ARCHIVE_TEST_SET
    card = (tmp_path / "run" / "test" / "README.md").read_text()
    assert "testing_list.txt of the original archive" in card


def test_table2_ks2_cell_takes_the_archive(archive, capsys):
    cell = ["--dataset", "ks2", "--model", "ast", "--loss", "add", "--dry_run"]
    table2_main(cell)
    assert any("not the paper's" in note for note in json.loads(capsys.readouterr().out)["notes"])
    table2_main([*cell, "--data_dir", str(archive)])
    printed = json.loads(capsys.readouterr().out)
    assert not any("not the paper's" in note for note in printed["notes"])
    assert RunConfig.from_values(printed["runs"][0]).data.spec().path == SPEECH_COMMANDS_ARCHIVE
