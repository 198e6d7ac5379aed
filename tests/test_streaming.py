"""hf-add train --streaming true: clips decoded in the loader workers, nothing cached, resumable after SIGKILL."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

import datasets
import numpy as np
import pytest
from datasets import ClassLabel, Dataset, Features, Value, load_dataset
from torchdata.stateful_dataloader import StatefulDataLoader

from hf_add.cli import main
from hf_add.data import get_spec
from hf_add.data.streaming import StreamingClips, StreamingLabels, stream_fold, take_process_part
from hf_add.run_lock import LOCK_NAME

from .audio_fixtures import write_parquet_shards
from .test_reliability import (
    QUICK,
    assert_same_weights,
    finishes,
    hf_add_process,
    killed_once_written,
    strict_json,
)
from .tiny import torchrun_on_cpu

LABELS = ["yes", "no", "up"]


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    """4 training shards (24 clips and one that is not audio) and a test shard (24 clips)."""
    return write_parquet_shards(tmp_path_factory.mktemp("stream") / "data", LABELS, 16, 4, bad_train_clips=1)


def stream_argv(data, output, *extra) -> list[str]:
    return [
        "train", "--model_name_or_path", "ast-tiny", "--ast_max_length", "40", "--streaming", "true",
        "--dataset_name", "parquet", "--data_dir", str(data), "--test_split", "test", "--class_names", *LABELS,
        "--loss", "add", "--per_device_train_batch_size", "4", "--output_dir", str(output), *QUICK, *extra,
    ]  # fmt: skip


def in_memory_stream(data: Path, num_shards: int):
    """The training shards as a stream held in memory: datasets' Parquet stream sleeps 5 s at the end of each
    pass (an Arrow workaround), which would make tests of many passes slow."""
    train = load_dataset("parquet", data_files=sorted(str(p) for p in data.glob("train-*.parquet")))["train"]
    return train.to_iterable_dataset(num_shards=num_shards)


def clip_ids(loader, batches: int) -> list[list[int]]:
    return [batch for batch in itertools.islice(iter(loader), batches)]


def first_samples(rows) -> list[int]:
    """A clip's identity in these tests: its label and its first sample, scaled to an integer."""
    return [int(row["labels"]) * 10**6 + int(row["waveform"][0] * 10**5) for row in rows]


@pytest.mark.parametrize("workers", [0, 2])
def test_a_stream_resumes_at_its_saved_position_across_passes(shards, workers):
    """Stop after 9 batches (the second pass over 25 rows, one of them not audio), restore the position in a new
    loader: the next batches are those of an uninterrupted stream. 4 shards for 2 workers, then 1 shard for 2
    (every worker reads each row and keeps every other)."""
    for source in (in_memory_stream(shards, 4), in_memory_stream(shards, 1)):

        def loader(source=source):
            clips = StreamingClips(
                source, class_names=LABELS, repeat=True, shuffle_buffer=5, skip_corrupt=True
            )
            return StatefulDataLoader(clips, batch_size=2, num_workers=workers, collate_fn=first_samples)

        reference = clip_ids(loader(), 20)
        stopped = loader()
        iterator = iter(stopped)
        head = [next(iterator) for _ in range(9)]
        resumed = loader()
        resumed.load_state_dict(stopped.state_dict())
        assert head + clip_ids(resumed, 11) == reference


def test_each_pass_is_a_new_order_of_the_same_clips(shards):
    clips = StreamingClips(
        in_memory_stream(shards, 4), class_names=LABELS, repeat=True, shuffle_buffer=100, skip_corrupt=True
    )
    stream = first_samples(itertools.islice(iter(clips), 48))  # 24 usable clips, twice
    assert sorted(stream[:24]) == sorted(stream[24:]) and stream[:24] != stream[24:]
    assert len(set(stream[:24])) == 24


def test_labels_come_from_a_classlabel_or_the_class_names_and_unknown_ones_are_named():
    features = Features({"label": ClassLabel(names=["cat", "dog"]), "text": Value("string")})
    assert StreamingLabels(features, "label")({"label": 1}, "row") == 1
    assert StreamingLabels(features, "text", class_names=["b", "a"])({"text": "a"}, "row") == 1
    with pytest.raises(ValueError, match=r"label column 'text' is not a ClassLabel.*--class_names"):
        StreamingLabels(features, "text")
    with pytest.raises(
        ValueError, match=r"no column 'tag'; its columns are \['label', 'text'\].*--label_column"
    ):
        StreamingLabels(features, "tag", class_names=["a"])
    with pytest.raises(ValueError, match=r"clip x.wav: label 'c' is not one of the 2 classes"):
        StreamingLabels(features, "text", class_names=["a", "b"])({"text": "c"}, "clip x.wav")
    dropped = StreamingLabels(features, "text", class_names=["a"], drop_labels=["_noise_"])
    assert dropped({"text": "_noise_"}, "row") is None
    tags = StreamingLabels(features, "text", class_names=["a", "b", "c"], label_separator=";")
    assert tags.multi_label and tags({"text": "c;a"}, "row") == [0, 2]


def test_a_streaming_run_trains_tests_and_caches_nothing(shards, tmp_path, monkeypatch):
    cache = tmp_path / "datasets-cache"
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(cache))
    out = tmp_path / "run"
    argv = stream_argv(shards, out, "--max_steps", "3", "--save_strategy", "no", "--skip_corrupt", "true")
    assert main([*argv, "--dataloader_num_workers", "2"]) == 0
    results = strict_json(out / "results.json")
    # the whole test split (24 clips) was evaluated: its confusion matrix counts them
    assert 0 <= results["folds"][0]["accuracy"] <= 1
    assert results["num_skipped_clips"] == 1
    assert (
        results["skipped_clips"][0]["file"] == "bad-0.wav"
        and "cannot be decoded" in results["skipped_clips"][0]["problem"]
    )
    assert json.loads((out / "skipped_clips.json").read_text()) == results["skipped_clips"]
    assert not list(cache.rglob("*.arrow")), "a stream wrote a datasets cache"


def test_a_bad_clip_stops_a_stream_in_one_line_naming_it(shards, tmp_path):
    """Raised in a loader worker, the error reaches the user as the one line that was raised."""
    argv = stream_argv(shards, tmp_path / "run", "--max_steps", "6", "--dataloader_num_workers", "2")
    process = hf_add_process(*argv)
    _, stderr = process.communicate(timeout=300)
    last = stderr.decode().strip().splitlines()[-1]
    assert process.returncode == 2
    assert re.fullmatch(
        r"hf-add train: error: train clip bad-0\.wav: cannot be decoded \(.*\)\. .*--skip_corrupt.*", last
    )


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ([], "give --max_steps"),
        (
            ["--max_steps", "2", "--samples_per_class", "2"],
            "class-balanced batches pick clips by class and index",
        ),
        (["--max_steps", "2", "--fold_column", "fold"], "cross-validation reads every clip"),
        (["--max_steps", "2", "--warmup_epochs", "1"], "no epochs to count"),
        (
            ["--max_steps", "2", "--warmup_steps", "2"],
            "--warmup_steps must be a whole number of steps, below --max_steps 2",
        ),
        (
            ["--max_steps", "2", "--save_strategy", "epoch"],
            "--save_strategy epoch would act once, at the end",
        ),
        (["--max_steps", "2", "--preprocessing_num_workers", "2"], "use --dataloader_num_workers"),
    ],
)
def test_what_a_stream_cannot_do_is_refused_before_anything_is_written(shards, tmp_path, extra, message):
    out = tmp_path / "run"
    with pytest.raises(ValueError, match=message):
        main(stream_argv(shards, out, *extra))
    assert not out.exists()


@pytest.mark.parametrize("workers", ["0", "2"])
def test_a_killed_streaming_run_resumes_without_repeating_or_skipping_clips(shards, tmp_path, workers):
    """SIGKILL after the second checkpoint (0 or 2 loader workers, a bad clip in the stream), then
    --resume_from_checkpoint true: the final weights are those of an uninterrupted run, bit for bit, so every
    batch after the checkpoint was the one the uninterrupted run trained on."""
    steps = ["--max_steps", "14", "--save_strategy", "steps", "--save_steps", "1", "--learning_rate", "0.001",
             "--dataloader_num_workers", workers, "--skip_corrupt", "true", "--shuffle_buffer_size", "6"]  # fmt: skip
    uninterrupted, killed = tmp_path / "uninterrupted", tmp_path / "killed"
    assert finishes(hf_add_process(*stream_argv(shards, uninterrupted, *steps)))

    killed_once_written(stream_argv(shards, killed, *steps), killed / "test" / "checkpoint-2")
    assert not (killed / "results.json").exists()
    (killed / LOCK_NAME).unlink()
    assert finishes(hf_add_process(*stream_argv(shards, killed, *steps, "--resume_from_checkpoint", "true")))
    assert_same_weights(killed / "test", uninterrupted / "test")
    assert (
        strict_json(killed / "results.json")["skipped_clips"]
        == strict_json(uninterrupted / "results.json")["skipped_clips"]
    )


def test_the_stream_position_is_required_to_resume_a_streaming_checkpoint(shards, tmp_path):
    out = tmp_path / "run"
    argv = stream_argv(shards, out, "--max_steps", "2", "--save_steps", "1", "--skip_corrupt", "true")
    assert main(argv) == 0
    checkpoint = out / "test" / "checkpoint-2"
    (checkpoint / "stream_position-rank0.pt").unlink()
    (out / "test" / "fold_results.json").unlink()
    with pytest.raises(ValueError, match=r"has no stream position .*could repeat or skip clips"):
        main([*argv, "--resume_from_checkpoint", "true"])


def test_streaming_clips_read_a_hand_made_stream_with_in_memory_audio():
    rows = Dataset.from_dict(
        {"audio": [{"array": np.full(800, 0.1, np.float32), "sampling_rate": 16000}], "label": [0]},
    ).cast_column("label", ClassLabel(names=["a", "b"]))
    clips = StreamingClips(rows.to_iterable_dataset())
    (clip,) = list(clips)
    assert clip["labels"] == 0 and clip["waveform"].shape == (800,)
    np.testing.assert_allclose(clip["waveform"], 0.1, atol=1e-4)


@pytest.mark.parametrize("train_shards", [4, 3])
def test_under_torchrun_each_process_reads_its_own_part_of_the_stream(tmp_path, train_shards):
    """Two processes' training streams, one pass each: disjoint, and together every clip, 6 each. 4 shards: 2
    each; 3 shards (3 row groups, not divisible by 2): every other row."""
    data = write_parquet_shards(tmp_path / "data", LABELS, 8, train_shards)
    spec = get_spec(path="parquet", data_dir=str(data), test_split="test", class_names=tuple(LABELS))
    parts = []
    for rank in (0, 1):
        train = stream_fold(
            spec,
            seed=0,
            shuffle_buffer=0,
            skip_corrupt=False,
            skipped_dir=str(tmp_path),
            rank=rank,
            world_size=2,
        ).train
        train.repeat = False
        parts.append(first_samples(train))
    assert not set(parts[0]) & set(parts[1])
    assert len(parts[0]) == len(parts[1]) == 6


def test_a_streaming_run_under_torchrun_lists_the_clips_any_process_skipped(shards, tmp_path):
    """2 processes, 4 shards: each reads 2; the bad clip is in one process's shards, and results.json lists it
    once, with the test on the whole test split."""
    out = tmp_path / "run"
    argv = stream_argv(shards, out, "--max_steps", "3", "--save_strategy", "no", "--skip_corrupt", "true")
    torchrun_on_cpu("hf_add.cli", *argv)
    results = strict_json(out / "results.json")
    assert [clip["file"] for clip in results["skipped_clips"]] == ["bad-0.wav"]
    assert results["num_skipped_clips"] == 1 and 0 <= results["folds"][0]["accuracy"] <= 1


def test_a_multi_label_stream_trains_with_bce_and_reports_map(tmp_path):
    """Tags split on ';' (a clip of 'yes' and 'up' mixed is tagged 'yes;up'): the model is multi-label and the
    test reports mAP, not accuracy."""
    data = write_parquet_shards(tmp_path / "data", LABELS, 8, 2)
    for path in data.glob("*.parquet"):
        table = Dataset.from_parquet(str(path))
        tags = [
            label if i % 3 else f"{label};{LABELS[(LABELS.index(label) + 1) % 3]}"
            for i, label in enumerate(table["label"])
        ]
        table.remove_columns("label").add_column("label", tags).to_parquet(str(path))
    out = tmp_path / "run"
    argv = stream_argv(data, out, "--max_steps", "2", "--save_strategy", "no", "--label_separator", ";")
    assert main(argv) == 0
    results = strict_json(out / "results.json")
    assert 0 <= results["folds"][0]["map"] <= 1 and "accuracy" not in results["folds"][0]
    config = json.loads((out / "test" / "config.json").read_text())
    assert config["problem_type"] == "multi_label_classification"


def test_a_run_started_afresh_lists_only_the_clips_it_skipped(shards, tmp_path):
    out = tmp_path / "run"
    flags = ["--max_steps", "3", "--save_strategy", "no", "--skip_corrupt", "true"]
    assert main(stream_argv(shards, out, *flags)) == 0
    assert strict_json(out / "results.json")["num_skipped_clips"] == 1
    fixed = write_parquet_shards(tmp_path / "fixed", LABELS, 16, 4)  # the bad clip replaced
    assert main(stream_argv(fixed, out, *flags, "--overwrite_output_dir", "true")) == 0
    assert strict_json(out / "results.json")["skipped_clips"] == []


def test_a_stream_warms_up_in_steps_and_logs_no_epoch(shards, tmp_path):
    """--warmup_steps 2: the rate of the first two steps rises linearly to --learning_rate; Trainer's "epoch" of a
    stream (step / max_steps) is not logged; results.json records the input length the run used."""
    out = tmp_path / "run"
    flags = ["--max_steps", "3", "--save_steps", "3", "--logging_steps", "1", "--warmup_steps", "2",
             "--learning_rate", "0.001", "--skip_corrupt", "true"]  # fmt: skip
    assert main(stream_argv(shards, out, *flags)) == 0
    history = json.loads((out / "test" / "checkpoint-3" / "trainer_state.json").read_text())["log_history"]
    rates = [logs["learning_rate"] for logs in history if "learning_rate" in logs]
    assert rates == pytest.approx([0.0005, 0.001, 0.001])
    assert not any("epoch" in logs for logs in history)
    assert strict_json(out / "results.json")["dataset"]["ast_max_length"] == 40


def test_the_trainer_gives_each_process_its_part_of_a_stream(shards):
    """A StreamingClips made without rank / world_size (the README's way under torchrun) takes the trainer's,
    so process 1 of 2 reads its own clips, not all of them; a different split given by hand is refused."""
    source = in_memory_stream(shards, 4)
    clips = StreamingClips(source, class_names=LABELS, skip_corrupt=True)
    take_process_part(clips, 1, 2)
    every = first_samples(StreamingClips(source, class_names=LABELS, skip_corrupt=True))
    part = first_samples(clips)
    assert (clips.rank, clips.world_size) == (1, 2) and 0 < len(part) < len(every) and set(part) < set(every)
    with pytest.raises(
        ValueError, match=r"StreamingClips\(rank=0, world_size=4\), but the trainer is process 1 of 2"
    ):
        take_process_part(StreamingClips(source, class_names=LABELS, rank=0, world_size=4), 1, 2)
