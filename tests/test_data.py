"""Dataset presets, fold protocols, bad data, the collator and AST length adaptation, on data made here."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import soundfile as sf
import torch
from datasets import Audio, ClassLabel, Dataset, DatasetDict, Features, Value, load_dataset
from transformers import ASTConfig, ASTForAudioClassification, TrainingArguments, pipeline

from hf_add import ADDLoss, ADDTrainer
from hf_add.data import (
    PRESETS,
    AudioClassificationCollator,
    AugmentationSwitch,
    get_spec,
    make_folds,
)
from hf_add.data.audio import decode_clip, read_directly
from hf_add.models.loading import adapt_ast_max_length, load_model_and_extractor

from .audio_fixtures import write_audiofolder

WORDS = ["yes", "no", "up"]


def clip(seconds: float = 0.1, seed: int = 0) -> dict:
    return {
        "array": np.random.default_rng(seed).uniform(-0.5, 0.5, int(16000 * seconds)),
        "sampling_rate": 16000,
    }


@pytest.fixture(scope="module")
def audiofolder(tmp_path_factory):
    root = tmp_path_factory.mktemp("words")
    write_audiofolder(root, WORDS, 4, sample_rates=(16000, 44100), channels=(1, 2), seconds=0.5)
    return root


class RecordingCollator(AudioClassificationCollator):
    """Remembers, per batch, whether it augmented and the shape of the labels it produced."""

    def __call__(self, rows):
        batch = super().__call__(rows)
        self.calls = [*getattr(self, "calls", []), (self.training, batch["labels"].dim())]
        return batch


def test_audiofolder_to_trainer_to_pipeline(audiofolder, tmp_path):
    data = load_dataset("audiofolder", data_dir=str(audiofolder))
    spec = get_spec(path="audiofolder", data_dir=str(audiofolder), fold_column="fold", ast_max_length=64)
    folds, skipped = make_folds(data, spec)
    assert skipped == [] and [f.name for f in folds] == ["fold1", "fold2"]
    fold = folds[0]
    assert fold.id2label == {0: "no", 1: "up", 2: "yes"}
    assert isinstance(fold.train.features["labels"], ClassLabel)
    for row in fold.train:  # 44.1 kHz stereo clips come out 16 kHz mono, decoded once into `waveform`
        assert len(row["waveform"]) == 8000

    model, extractor, kwargs = load_model_and_extractor("ast-tiny", spec, fold.id2label)
    collator = RecordingCollator(extractor, num_labels=3, freq_mask=48, time_mask=20, mixup=1.0)
    rows = [fold.train[i] for i in range(4)]
    plain = collator(rows)
    assert plain["labels"].dtype == torch.long
    torch.testing.assert_close(
        plain["input_values"],
        extractor([np.asarray(r["waveform"]) for r in rows], sampling_rate=16000, return_tensors="pt")[
            "input_values"
        ],
    )
    torch.manual_seed(0)
    augmented = collator.train()(rows)
    assert augmented["labels"].shape == (4, 3)
    torch.testing.assert_close(augmented["labels"].sum(1), torch.ones(4))
    assert (augmented["labels"] < 1).any()  # λ ~ Beta(10, 10) never gives a one-hot row
    masked = augmented["input_values"] == 0
    assert masked.all(dim=2).any() and masked.all(dim=1).any()  # whole frames and whole mel bins zeroed
    collator.eval()
    collator.calls = []

    args = TrainingArguments(
        str(tmp_path / "run"),
        max_steps=2,
        per_device_train_batch_size=4,
        eval_strategy="steps",
        eval_steps=1,
        remove_unused_columns=False,
        report_to="none",
        save_strategy="no",
        use_cpu=True,
    )
    trainer = ADDTrainer(
        model=model,
        args=args,
        train_dataset=fold.train,
        eval_dataset=fold.test,
        processing_class=extractor,
        data_collator=collator,
        callbacks=[AugmentationSwitch(collator)],
        embedding_loss=ADDLoss(),
    )
    trainer.train()
    # Training batches augmented with soft labels, evaluation batches (during and after training) not.
    assert {c for c in collator.calls if c[0]} == {(True, 2)}
    assert {c for c in collator.calls if not c[0]} == {(False, 1)}
    assert not collator.training and "eval_accuracy" in trainer.evaluate()

    trainer.save_model(str(tmp_path / "model"))
    scores = pipeline("audio-classification", model=str(tmp_path / "model"))(clip(0.5)["array"], top_k=3)
    assert {s["label"] for s in scores} == set(WORDS)
    assert sum(s["score"] for s in scores) == pytest.approx(1.0, abs=1e-4)


def esc50_like(n_per_fold: int = 2) -> Dataset:
    categories = ["dog", "rain", "clock"]  # target order: dog=0, rain=1, clock=2
    rows = [
        {
            "filename": f"{f}-{i}.wav",
            "fold": f,
            "target": i % 3,
            "category": categories[i % 3],
            "audio": clip(seed=i),
        }
        for f in range(1, 6)
        for i in range(n_per_fold * 3)
    ]
    features = Features(
        {
            "filename": Value("string"),
            "fold": Value("int64"),
            "target": Value("int64"),
            "category": Value("string"),
            "audio": Audio(sampling_rate=16000),
        }
    )
    return Dataset.from_list(rows, features=features)


def test_esc50_five_fold_cross_validation():
    dataset = esc50_like()
    folds, _ = make_folds(DatasetDict({"train": dataset}), PRESETS["esc50"])
    assert len(folds) == 5
    for k, fold in enumerate(folds, start=1):
        assert set(fold.test["fold"]) == {k} and k not in set(fold.train["fold"])
        assert len(fold.train) + len(fold.test) == len(dataset)
        assert fold.id2label == {0: "dog", 1: "rain", 2: "clock"}
        assert fold.test["labels"] == fold.test["target"]
    assert len(make_folds(DatasetDict({"train": dataset}), PRESETS["esc50"], cv_folds=2)[0]) == 2


def test_iemocap_sessions_map_labels_by_name():
    names = ["sad", "fru", "exc", "neu", "ang", "hap"]  # neither alphabetical nor the preset's order
    features = Features({"audio": Audio(sampling_rate=16000), "label": ClassLabel(names=names)})
    sessions = {
        f"session{s}": Dataset.from_list(
            [{"audio": clip(0.05, seed=s * 10 + i), "label": i} for i in range(len(names))], features=features
        )
        for s in range(1, 6)
    }
    folds, _ = make_folds(DatasetDict(sessions), PRESETS["er"])
    assert [f.name for f in folds] == list(sessions)
    expected = ["sad", "happy", "neutral", "angry", "happy"]  # "fru" dropped, "exc" merged into "happy"
    for fold in folds:
        assert fold.id2label == {0: "neutral", 1: "happy", 2: "angry", 3: "sad"}
        assert [fold.id2label[i] for i in fold.test["labels"]] == expected
        assert len(fold.train) == 4 * len(expected)


BAD_CLIPS = {  # file name: (what is written, the problem named)
    "broken.wav": ({"bytes": b"RIFF not really a wav"}, "cannot be decoded"),
    "silent.wav": ({"samples": 0}, "no audio frames"),
    "nan.wav": ({"wave": np.array([0.1, np.nan] * 4000, np.float32)}, "contains NaN or inf samples"),
    "inf.wav": ({"wave": np.array([0.1, np.inf] * 4000, np.float32)}, "contains NaN or inf samples"),
    "eight_samples.wav": (
        {"samples": 8},
        "is 8 samples long (0.5 ms), shorter than one 25 ms analysis window",
    ),
    "ten_ms.wav": ({"samples": 160}, "is 160 samples long (10.0 ms)"),
}


def test_every_unusable_clip_is_named_or_skipped_and_listed(tmp_path):
    extra = [
        {"file_name": name, "label": "yes", "fold": 1 + i % 2, **written}
        for i, (name, (written, _)) in enumerate(BAD_CLIPS.items())
    ]
    root = write_audiofolder(tmp_path / "bad", ["yes", "no"], 2, seconds=0.1, extra_rows=extra)
    data = load_dataset("audiofolder", data_dir=str(root))
    spec = get_spec(path="audiofolder", fold_column="fold")
    with pytest.raises(ValueError, match="--skip_corrupt") as error:
        make_folds(data, spec)
    for name, (_, problem) in BAD_CLIPS.items():  # one error names every bad clip and its problem
        assert f"{name}): {problem}" in str(error.value)
    folds, skipped = make_folds(data, spec, skip_corrupt=True)
    named = {s["file"].rsplit("/", 1)[-1]: s["problem"] for s in skipped}
    assert named.keys() == BAD_CLIPS.keys()
    assert all(named[name].startswith(problem) for name, (_, problem) in BAD_CLIPS.items())
    assert sum(len(f.test) for f in folds) == 4  # the good clips, each tested once
    for fold in folds:  # what is left trains: finite samples, at least one analysis window
        for part in (fold.train, fold.test):
            assert all(len(w) >= 400 and np.isfinite(w).all() for w in part.with_format("numpy")["waveform"])


def test_labels_splits_and_classes_that_cannot_train_are_refused(tmp_path):
    root = write_audiofolder(tmp_path / "data", ["yes", "no"], 2, seconds=0.1)
    data = load_dataset("audiofolder", data_dir=str(root))
    spec = get_spec(path="audiofolder", fold_column="fold")
    with pytest.raises(ValueError, match=r"row 2 \(.*no_0\.wav\): label 'no' is not one of"):
        make_folds(data, get_spec(path="audiofolder", fold_column="fold", class_names=("yes", "up")))
    with pytest.raises(ValueError, match=r"no column\(s\) \['target', 'category'\].*--label_column"):
        make_folds(data, PRESETS["esc50"])
    unlabelled = (
        data["train"]
        .cast_column("label", Value("string"))
        .map(lambda row, i: {"label": "" if i == 1 else row["label"]}, with_indices=True)
    )
    with pytest.raises(ValueError, match=r"row 1 \(.*\): the label \('label'\) is empty"):
        make_folds(DatasetDict({"train": unlabelled}), spec)
    one_class = data["train"].filter(lambda row: row["label"] == "yes")
    with pytest.raises(ValueError, match=r"1 class\(es\).*at least 2"):
        make_folds(DatasetDict({"train": one_class}), spec)
    fixed = get_spec(path="audiofolder", test_split="test")
    with pytest.raises(ValueError, match="split 'test' of audiofolder is empty"):
        make_folds(DatasetDict({"train": data["train"], "test": data["train"].select([])}), fixed)
    with pytest.raises(ValueError, match="has no split"):
        make_folds(DatasetDict({"train": data["train"]}), fixed)


def tiny_ast_config(max_length: int) -> ASTConfig:
    return ASTConfig(
        hidden_size=8,
        num_hidden_layers=1,
        num_attention_heads=1,
        intermediate_size=16,
        num_mel_bins=32,
        max_length=max_length,
        num_labels=2,
    )


@pytest.mark.parametrize("new_length, new_time", [(44, 3), (104, 9), (64, 5)])
def test_adapt_ast_max_length_cuts_or_interpolates(new_length, new_time):
    torch.manual_seed(0)
    model = ASTForAudioClassification(tiny_ast_config(64))  # 2 frequency x 5 time patches
    original = model.audio_spectrogram_transformer.embeddings.position_embeddings.detach().clone()
    grid = original[:, 2:].reshape(1, 2, 5, 8).permute(0, 3, 1, 2)
    if new_time < 5:
        expected = grid[..., 1 : 1 + new_time]
    else:
        expected = torch.nn.functional.interpolate(grid, size=(2, new_time), mode="bilinear")
    adapt_ast_max_length(model, new_length)
    adapted = model.audio_spectrogram_transformer.embeddings.position_embeddings
    assert model.config.max_length == new_length and adapted.shape == (1, 2 + 2 * new_time, 8)
    torch.testing.assert_close(adapted[:, :2], original[:, :2])
    torch.testing.assert_close(adapted[:, 2:].reshape(1, 2, new_time, 8).permute(0, 3, 1, 2), expected)
    assert model(torch.randn(1, new_length, 32)).logits.shape == (1, 2)


def test_checkpoint_is_loaded_at_its_length_then_adapted(tmp_path):
    from transformers import ASTFeatureExtractor

    torch.manual_seed(0)
    config = tiny_ast_config(64)
    config.id2label = {i: f"event{i}" for i in range(5)}  # the checkpoint's own head (AudioSet: 527 events)
    config.label2id = {name: i for i, name in config.id2label.items()}
    source = ASTForAudioClassification(config)
    source.save_pretrained(tmp_path)
    ASTFeatureExtractor(num_mel_bins=32, max_length=64).save_pretrained(tmp_path)
    spec = get_spec(path="audiofolder", ast_max_length=44)
    warnings = []  # transformers' loggers do not propagate to caplog; a handler on its root sees them
    handler = logging.Handler(logging.WARNING)
    handler.emit = warnings.append
    logging.getLogger("transformers").addHandler(handler)
    try:
        model, extractor, _ = load_model_and_extractor(str(tmp_path), spec, {0: "a", 1: "b", 2: "c"})
    finally:
        logging.getLogger("transformers").removeHandler(handler)
    # A new head's labels: no "num_labels=3 is incompatible to the id2label map of length 2" warning.
    assert not [r for r in warnings if "num_labels" in r.getMessage()]
    expected = adapt_ast_max_length(source, 44).audio_spectrogram_transformer.embeddings.position_embeddings
    torch.testing.assert_close(model.audio_spectrogram_transformer.embeddings.position_embeddings, expected)
    assert extractor.max_length == 44 and model.config.num_labels == 3


def test_beats_directory_gets_padding_and_attention_mask(tmp_path):
    from hf_add import BeatsConfig, BeatsForAudioClassification

    config = BeatsConfig(
        embed_dim=24, encoder_layers=1, encoder_embed_dim=32, encoder_ffn_embed_dim=64, encoder_attention_heads=4,
        conv_pos=16, conv_pos_groups=4, encoder_layerdrop=0.0, num_labels=5,
    )  # fmt: skip
    BeatsForAudioClassification(config).save_pretrained(
        tmp_path
    )  # a converted checkpoint, no extractor config
    spec = get_spec(path="audiofolder", max_seconds=0.3)
    model, extractor, kwargs = load_model_and_extractor(str(tmp_path), spec, {0: "a", 1: "b"})
    collator = AudioClassificationCollator(extractor, num_labels=2, extractor_kwargs=kwargs)
    batch = collator([{"audio": clip(0.1), "labels": 0}, {"audio": clip(0.5), "labels": 1}])
    # Cut at 0.3 s: 28 frames of 25 ms every 10 ms.
    assert batch["input_values"].shape[:2] == batch["attention_mask"].shape == (2, 28)
    assert batch["attention_mask"][0].sum() < batch["attention_mask"][1].sum() == 28
    assert model(batch["input_values"], attention_mask=batch["attention_mask"]).logits.shape == (2, 2)


def test_split_column_divides_a_single_split_dataset():
    from datasets import Dataset, DatasetDict

    from hf_add.data.presets import split_by_column

    rows = Dataset.from_dict(
        {"x": list(range(6)), "partition": ["train", "test", "train", "validation", "test", "train"]}
    )
    splits = split_by_column(DatasetDict({"train": rows}), "partition")
    assert {name: split["x"] for name, split in splits.items()} == {
        "test": [1, 4],
        "train": [0, 2, 5],
        "validation": [3],
    }
    with pytest.raises(ValueError, match="not a column"):
        split_by_column(DatasetDict({"train": rows}), "fold")


def test_class_names_sort_naturally():
    from hf_add.data.presets import natural_sort_key

    names = ["10", "b", "class10", "2", "Dog", "class9", "1", "Apple", "dog", "01", "été"]
    assert sorted(names, key=natural_sort_key) == [
        "01", "1", "2", "10", "Apple", "b", "class9", "class10", "Dog", "dog", "été",
    ]  # fmt: skip


@pytest.mark.parametrize("layout", ["metadata", "directories"])
def test_numeric_label_names_get_ids_in_natural_order(tmp_path, layout):
    import soundfile as sf

    if layout == "metadata":  # label column 1, 2, 10 (read as integers from metadata.csv)
        write_audiofolder(tmp_path, ["10", "2", "1"], 2, seconds=0.1)
        spec = get_spec(path="audiofolder", data_dir=str(tmp_path), fold_column="fold")
    else:  # one directory per class: datasets makes a ClassLabel, its names sorted as text
        for name in ("10", "2", "1"):
            for k in range(2):
                (tmp_path / name).mkdir(exist_ok=True)
                sf.write(tmp_path / name / f"clip{k}.wav", np.zeros(1600, np.float32), 16000)
        spec = get_spec(path="audiofolder", data_dir=str(tmp_path), test_split="train")
    data = load_dataset("audiofolder", data_dir=str(tmp_path))
    folds, _ = make_folds(data, spec, check_clips=False)
    assert folds[0].id2label == {0: "1", 1: "2", 2: "10"}
    names = folds[0].test.features["labels"].int2str(folds[0].test["labels"])
    truth = folds[0].test["label"]
    if layout == "directories":
        truth = data["train"].features["label"].int2str(truth)
    assert names == [str(t) for t in truth]


def test_resumed_run_keeps_the_class_ids_it_was_saved_with(tmp_path):
    import json

    from hf_add.data.presets import Fold, keep_saved_class_order
    from hf_add.evaluation import label_ids_by_name

    labels = ClassLabel(names=["1", "2", "10"])  # the natural order
    split = Dataset.from_dict({"name": ["1", "2", "10", "10"], "labels": [0, 1, 2, 2]}).cast_column(
        "labels", labels
    )
    fold = Fold("fold1", split, split, None, {0: "1", 1: "2", 2: "10"})
    assert keep_saved_class_order(fold, None) is fold
    checkpoint = tmp_path / "checkpoint-3"
    checkpoint.mkdir()
    (checkpoint / "config.json").write_text(
        json.dumps({"id2label": {"0": "1", "1": "10", "2": "2"}})
    )  # as text
    kept = keep_saved_class_order(fold, str(checkpoint))
    assert kept.id2label == {0: "1", 1: "10", 2: "2"} and kept.validation is None
    for dataset in (kept.train, kept.test):
        assert dataset.features["labels"].int2str(dataset["labels"]) == dataset["name"]
        assert dataset["labels"] == [0, 2, 1, 1]
    # evaluation matches by name: a model saved in the old order scores the same rows as the same classes
    assert label_ids_by_name(split, "labels", {"1": 0, "10": 1, "2": 2}) == [0, 2, 1, 1]
    (checkpoint / "config.json").write_text(json.dumps({"id2label": {"0": "1", "1": "2", "2": "3"}}))
    with pytest.raises(ValueError, match=r"checkpoint-3 was saved with the classes \['1', '2', '3'\]"):
        keep_saved_class_order(fold, str(checkpoint))


def test_splits_inferred_from_file_names_are_explained(tmp_path):
    import csv

    import soundfile as sf

    from hf_add.data.presets import split_by_column, splits_from_names

    names = ["a_0.wav", "a_1.wav", "test_tone.wav", "b_test.wav", "b_1.wav", "train_x.wav"]
    rows = []
    for i, name in enumerate(names):
        sf.write(tmp_path / name, np.zeros(1600, np.float32), 16000)
        rows.append({"file_name": name, "label": "ab"[i % 2], "partition": "train" if i < 4 else "test"})
    with open(tmp_path / "metadata.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["file_name", "label", "partition"])
        writer.writeheader()
        writer.writerows(rows)
    assert splits_from_names(str(tmp_path)) == {
        "train": ["train_x.wav"],
        "test": ["b_test.wav", "test_tone.wav"],
    }
    spec = get_spec(path="audiofolder", data_dir=str(tmp_path), split_column="partition", test_split="test")
    message = (
        rf"split_column 'partition' needs a dataset with one split, but datasets split {tmp_path} into "
        r"\['train', 'test'\] by file and directory names .*'train' from 1 file\(s\) \(train_x\.wav\), 'test' "
        r"from 2 file\(s\) \(b_test\.wav, test_tone\.wav\); the other 4 file\(s\), metadata included, were left "
        r"out\. Rename them .*data_files="
    )
    with pytest.raises(ValueError, match=message) as refused:
        spec.load()
    assert "\n" not in str(refused.value)
    for name in ("test_tone.wav", "b_test.wav", "train_x.wav"):  # the fix: neutral names
        (tmp_path / name).rename(tmp_path / name.replace("test", "t").replace("train", "r"))
    with open(tmp_path / "metadata.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["file_name", "label", "partition"])
        writer.writeheader()
        writer.writerows(
            {**row, "file_name": row["file_name"].replace("test", "t").replace("train", "r")} for row in rows
        )
    assert splits_from_names(str(tmp_path)) == {}
    assert {name: len(split) for name, split in spec.load().items()} == {"test": 2, "train": 4}
    # without the folder it was loaded from, the short message
    with pytest.raises(ValueError, match=r"^split_column needs a dataset with one split, got splits"):
        split_by_column(
            DatasetDict({"train": Dataset.from_dict({"x": [1]}), "test": Dataset.from_dict({"x": [2]})}), "x"
        )


@pytest.mark.parametrize(
    ("container", "subtype", "rate", "channels"),
    [("WAV", "PCM_16", 16000, 1), ("WAV", "PCM_24", 16000, 1), ("WAV", "FLOAT", 16000, 1), ("WAV", "PCM_U8", 16000, 1),
     ("FLAC", "PCM_16", 16000, 1), ("WAV", "PCM_16", 44100, 1), ("WAV", "PCM_16", 16000, 2), ("OGG", "VORBIS", 16000, 1)],
)  # fmt: skip
def test_a_clip_read_directly_has_the_samples_torchcodec_decodes(
    tmp_path, container, subtype, rate, channels
):
    """16 kHz mono WAV / FLAC is read with libsndfile, the rest decoded by torchcodec: the same samples either
    way, from bytes and from a file."""
    wave = np.clip(0.3 * np.random.default_rng(0).standard_normal((rate, channels)), -1, 1).astype(np.float32)
    path = tmp_path / f"clip.{container.lower()}"
    sf.write(path, wave, rate, subtype=subtype, format=container)
    direct = container in ("WAV", "FLAC") and rate == 16000 and channels == 1
    decoder = Audio(sampling_rate=16000, num_channels=1)
    for value in ({"bytes": path.read_bytes(), "path": path.name}, {"bytes": None, "path": str(path)}):
        expected = decoder.decode_example(value).get_all_samples().data[0].numpy()
        assert (read_directly(value) is not None) == direct
        samples, problem = decode_clip(decoder, value)
        assert problem == ""
        np.testing.assert_array_equal(samples, expected)
