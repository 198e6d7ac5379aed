"""The batched fbank against the extractors, and the collator on cached waveforms against decoded audio."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from datasets import Audio, load_dataset
from transformers import ASTFeatureExtractor

from hf_add.data import AudioClassificationCollator
from hf_add.data.fbank import BatchedFbank
from hf_add.models.beats import BeatsFeatureExtractor
from hf_add.models.loading import extractor_kwargs

from .audio_fixtures import write_audiofolder

SECONDS = (1.0, 0.7713, 0.025, 1.2, 0.5001, 0.0311)  # one 400-sample frame, frames cut by max_length


def waves(seed: int = 0) -> list[np.ndarray]:
    """Noise, a tone, near-silence (mel bins at the floor), silence and a DC offset, of several lengths."""
    rng = np.random.default_rng(seed)
    out = []
    for i, seconds in enumerate(SECONDS):
        n = int(16000 * seconds)
        t = np.arange(n) / 16000
        kinds = [
            rng.uniform(-0.5, 0.5, n),
            0.5 * np.sin(2 * np.pi * 440 * t) + 0.01 * rng.standard_normal(n),
            1e-6 * rng.standard_normal(n),
            np.zeros(n),
            0.2 + 0.1 * np.sin(2 * np.pi * 50 * t),
            rng.standard_normal(n).clip(-1, 1),
        ]
        out.append(kinds[i].astype(np.float32))
    return out


@pytest.mark.parametrize("max_length", [100, 64, 128])
def test_batched_fbank_matches_ast_extractor(max_length):
    extractor = ASTFeatureExtractor(num_mel_bins=128, max_length=max_length)
    expected = extractor(waves(), sampling_rate=16000, return_tensors="pt")["input_values"]
    got = BatchedFbank.for_extractor(extractor)(waves())
    assert set(got) == {"input_values"} and got["input_values"].shape == expected.shape
    torch.testing.assert_close(got["input_values"], expected, rtol=0, atol=1e-4)


def test_batched_fbank_matches_ast_without_normalisation():
    extractor = ASTFeatureExtractor(num_mel_bins=64, max_length=80, do_normalize=False)
    expected = extractor(waves(1), sampling_rate=16000, return_tensors="pt")["input_values"]
    torch.testing.assert_close(
        BatchedFbank.for_extractor(extractor)(waves(1))["input_values"], expected, rtol=0, atol=1e-4
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"padding": "longest", "truncation": True, "max_length": 12000},
        {"padding": "max_length", "truncation": True, "max_length": 24000},
    ],
)
def test_batched_fbank_matches_beats_extractor(kwargs):
    clips = [w for w in waves(2) if w.size >= 400]
    extractor = BeatsFeatureExtractor()
    expected = extractor(clips, sampling_rate=16000, return_tensors="pt", **kwargs)
    got = BatchedFbank.for_extractor(extractor, kwargs)(clips)
    torch.testing.assert_close(got["input_values"], expected["input_values"], rtol=0, atol=1e-4)
    assert torch.equal(got["attention_mask"], expected["attention_mask"])


def test_beats_max_length_is_saved_and_applied(tmp_path):
    clips = [w for w in waves(3) if w.size >= 400]
    extractor = BeatsFeatureExtractor(max_length=9000)
    extractor.save_pretrained(tmp_path)
    reloaded = BeatsFeatureExtractor.from_pretrained(tmp_path)
    assert reloaded.max_length == 9000 and extractor_kwargs(reloaded) == {}
    expected = reloaded(clips, sampling_rate=16000, return_tensors="pt")
    assert expected["input_values"].shape[1] == 1 + (9000 - 400) // 160
    torch.testing.assert_close(
        BatchedFbank.for_extractor(reloaded)(clips)["input_values"],
        expected["input_values"],
        rtol=0,
        atol=1e-4,
    )


def test_other_extractors_and_options_fall_back():
    class MyExtractor(ASTFeatureExtractor):
        pass

    assert BatchedFbank.for_extractor(MyExtractor()) is None
    assert BatchedFbank.for_extractor(ASTFeatureExtractor(), {"padding": "longest"}) is None
    assert BatchedFbank.for_extractor(BeatsFeatureExtractor(), {"pad_to_multiple_of": 160}) is None
    assert BatchedFbank.for_extractor(BeatsFeatureExtractor(), {"padding": "max_length"}) is None
    collator = AudioClassificationCollator(MyExtractor(max_length=64), num_labels=2)
    rows = [{"audio": {"array": w, "sampling_rate": 16000}, "labels": 1} for w in waves()[:2]]
    batch = collator(rows)
    assert collator.fbank is None and batch["input_values"].shape == (2, 64, 128)


@pytest.fixture(scope="module")
def cached(tmp_path_factory):
    """An audiofolder with 44.1 kHz and stereo clips, decoded to 16 kHz mono, and the same with a
    ``waveform`` column made by datasets.map (as the decode-once pass does)."""
    root = write_audiofolder(
        tmp_path_factory.mktemp("clips"), ["yes", "no", "up"], 4, sample_rates=(16000, 44100), channels=(1, 2)
    )
    data = load_dataset("audiofolder", data_dir=str(root), split="train")
    data = data.cast_column("audio", Audio(sampling_rate=16000, num_channels=1))
    data = data.rename_column("label", "labels").class_encode_column("labels")
    with_waveform = data.map(
        lambda audio: {"waveform": np.asarray(audio["array"], dtype=np.float32)}, input_columns="audio"
    )
    return data, with_waveform


@pytest.mark.parametrize(("training", "mixup"), [(False, 0.0), (True, 0.0), (True, 0.5)])
def test_cached_features_waveforms_and_decoded_audio_give_identical_batches(cached, training, mixup):
    data, with_waveform = cached
    extractor = ASTFeatureExtractor(num_mel_bins=128, max_length=100)
    options = dict(num_labels=3, freq_mask=20, time_mask=10, mixup=mixup)
    collator = AudioClassificationCollator(extractor, **options).train(training)
    uncached = AudioClassificationCollator(extractor, cache_features=False, **options)
    sources = {
        "features": collator.prepare(with_waveform),
        "waveform": uncached.prepare(with_waveform),
        "audio": collator.prepare(data),
    }
    assert sources["features"].column_names == ["input_values", *(["waveform"] if mixup else []), "labels"]
    assert sources["waveform"].column_names == ["waveform", "labels"]
    assert collator.prepare(sources["features"]).column_names == sources["features"].column_names
    assert sources["audio"].column_names == ["audio", "labels"]
    batches = {}
    for name, dataset in sources.items():
        torch.manual_seed(0)  # the same mixup partners and masks
        batches[name] = collator(dataset.__getitems__(list(range(len(dataset)))))
    for name in ("waveform", "audio"):
        assert batches[name].keys() == batches["features"].keys() == {"input_values", "labels"}
        for key, value in batches["features"].items():
            assert torch.equal(value, batches[name][key]), (name, key)


def test_a_clip_has_the_same_features_in_any_batch(cached):
    _, with_waveform = cached
    extractor = ASTFeatureExtractor(num_mel_bins=128, max_length=100)
    collator = AudioClassificationCollator(extractor, num_labels=3, cache_features=False)
    rows = collator.prepare(with_waveform).__getitems__(list(range(len(with_waveform))))
    rows[5]["waveform"] = rows[5]["waveform"][:2000]  # a short clip: fewer frames than the others
    whole = collator(rows)["input_values"]
    for part in ([5], [3, 5], [11, 0, 5, 7, 1]):
        assert torch.equal(collator([rows[i] for i in part])["input_values"], whole[part])
    expected = extractor([row["waveform"] for row in rows], sampling_rate=16000, return_tensors="pt")
    torch.testing.assert_close(whole, expected["input_values"], rtol=0, atol=1e-4)


def test_features_cache_is_read_again_and_recomputed_when_the_extractor_changes(cached):
    _, with_waveform = cached

    def prepared(**settings):
        extractor = ASTFeatureExtractor(**{"num_mel_bins": 128, "max_length": 100, **settings})
        dataset = AudioClassificationCollator(extractor, num_labels=3).prepare(with_waveform)
        (cache_file,) = {f["filename"] for f in dataset.cache_files} - {
            f["filename"] for f in with_waveform.cache_files
        }
        features = torch.from_numpy(np.stack(dataset["input_values"])).view(
            len(dataset), -1, extractor.num_mel_bins
        )
        expected = extractor(list(with_waveform["waveform"]), sampling_rate=16000, return_tensors="pt")
        torch.testing.assert_close(features, expected["input_values"], rtol=0, atol=1e-4)
        return cache_file, os.stat(cache_file).st_mtime_ns

    first = prepared()
    assert prepared() == first  # same configuration: the cache file is read, not written again
    for change in ({"max_length": 64}, {"mean": 0.0}, {"num_mel_bins": 64}):
        assert prepared(**change)[0] != first[0], change


def test_batches_without_labels_for_inference():
    collator = AudioClassificationCollator(
        BeatsFeatureExtractor(), num_labels=2, extractor_kwargs={"padding": "longest"}
    )
    batch = collator([{"waveform": w} for w in waves()[:2]])
    assert set(batch) == {"input_values", "attention_mask"}
    with pytest.raises(ValueError, match="mixup mixes labels"):
        AudioClassificationCollator(BeatsFeatureExtractor(), num_labels=2, mixup=1.0).train()(
            [{"waveform": w} for w in waves()[:2]]
        )


def test_features_on_a_named_device_are_the_same(cached):
    _, with_waveform = cached
    extractor = ASTFeatureExtractor(num_mel_bins=128, max_length=100)
    rows = with_waveform.select_columns(["waveform", "labels"]).with_format("numpy").__getitems__([0, 4, 7])
    here = AudioClassificationCollator(extractor, num_labels=3)(rows)
    there = AudioClassificationCollator(extractor, num_labels=3, feature_device="cpu")(rows)
    assert all(torch.equal(here[key], there[key]) for key in here)


def test_features_cached_on_a_whole_split_serve_every_fold(cached, monkeypatch):
    """k-fold: one cache made before the split is cut, reused by each fold's prepare (not k copies)."""
    _, with_waveform = cached
    extractor = ASTFeatureExtractor(num_mel_bins=128, max_length=100)
    collator = AudioClassificationCollator(extractor, num_labels=3)
    whole = collator.cache_split(with_waveform)
    folds = [whole.select(range(0, 6)), whole.select(range(6, 12))]
    monkeypatch.setattr("hf_add.data.collator.cache_features", lambda *a, **k: pytest.fail("cached again"))
    for fold in folds:
        prepared = collator.prepare(fold)
        assert {f["filename"] for f in prepared.cache_files} == {f["filename"] for f in whole.cache_files}
        expected = extractor(list(fold["waveform"]), sampling_rate=16000, return_tensors="pt")["input_values"]
        features = torch.from_numpy(np.stack(prepared["input_values"])).view(len(fold), -1, 128)
        torch.testing.assert_close(features, expected, rtol=0, atol=1e-4)
    other = AudioClassificationCollator(ASTFeatureExtractor(num_mel_bins=128, max_length=64), num_labels=3)
    with pytest.raises(pytest.fail.Exception, match="cached again"):  # another configuration never reuses it
        other.prepare(folds[0])
