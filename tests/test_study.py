import csv
import json
import os

import pytest
import torch

from hf_add.files import write_json
from hf_add.research import study


def recipe(tmp_path, device="cpu") -> study.Recipe:
    return study.Recipe(data_dir=str(tmp_path / "data"), model="ast-tiny", epochs=2, device=device)


def test_slug_is_an_ascii_directory_name():
    assert study.slug("ADD λ={1,0,1,0}") == "add-1-0-1-0"
    assert study.slug("CE + OPL (γ=2, ×0.1)") == "ce-opl-2-0-1"
    assert len({study.slug(row) for row in study.ROWS}) == len(study.ROWS)


@pytest.mark.parametrize("row", list(study.ROWS))
def test_every_row_is_a_valid_training_command(tmp_path, row):
    config = study.run_config(recipe(tmp_path), row, 1, str(tmp_path / "run"))
    training = config.training
    assert training.use_cpu and training.seed == 1 and training.load_best_model_at_end
    assert config.loss.loss == study.ROWS[row]["loss"]
    assert config.command_line().startswith("hf-add train --model_name_or_path ast-tiny --ast_max_length 100")


def test_gpu_runs_use_bf16_workers_and_model_only_checkpoints(tmp_path):
    settings = study.run_settings(recipe(tmp_path, "cuda"), study.PROPOSED, 0, str(tmp_path / "run"))
    assert "use_cpu" not in settings
    for name in ("bf16", "save_only_model", "dataloader_persistent_workers"):
        assert settings[name] is True


def fake_results(tmp_path, row, seed, accuracy):
    fold = {metric: 0.5 for metric in study.METRICS} | {"accuracy": accuracy, "fold": "test"}
    path = tmp_path / study.slug(row) / f"seed{seed}" / "results.json"
    write_json({"folds": [fold], "wall_seconds": 100.0 + seed}, path)


def test_finished_runs_are_read_back_not_retrained(tmp_path, monkeypatch):
    monkeypatch.setattr(study.runs, "run", lambda config: pytest.fail("a finished run was trained again"))
    fake_results(tmp_path, "CE", 0, 0.25)
    line = study.run_one(recipe(tmp_path), str(tmp_path), "CE", 0)
    assert line["accuracy"] == 0.25 and line["wall_seconds"] == 100.0
    assert line["model_dir"] == str(tmp_path / "ce" / "seed0" / "test")


def test_table_and_paired_comparison_by_hand(tmp_path):
    ce, add = [0.50, 0.60, 0.70], [0.55, 0.60, 0.80]
    for seed in range(3):
        fake_results(tmp_path, study.BASELINE, seed, ce[seed])
        fake_results(tmp_path, study.PROPOSED, seed, add[seed])
    runs = [
        study.run_one(recipe(tmp_path), str(tmp_path), row, s)
        for row in (study.BASELINE, study.PROPOSED)
        for s in range(3)
    ]
    table = {line["row"]: line for line in study.summarize(runs)}
    assert table["CE"]["accuracy_mean"] == pytest.approx(0.6)
    assert table["CE"]["accuracy_std"] == pytest.approx(0.1)  # sample std of 0.5, 0.6, 0.7
    assert table["CE"]["wall_seconds_per_run"] == pytest.approx(101.0)
    # differences +5, 0, +10 points: mean +5, sample std 5; t(0.975, 2) = 4.303 gives ±4.303·5/√3 = ±12.42
    comparison = study.paired(runs)
    # the sign test drops the tied seed: 2 of 2 favour ADD, p = 2 · (1/2)² = 0.5
    assert "| ADD λ={1,1,1,1} | CE | 3 | +5.00 | [-7.42, +17.42] | 12.42 | 2 of 3 | 0.500 |" in comparison
    assert "| CE | 50.00 | 60.00 | 70.00 |" in comparison
    markdown = study.markdown(list(table.values()), recipe(tmp_path), str(tmp_path), seeds=3)
    assert "| CE | 60.00 ± 10.00 |" in markdown and "hf-add train --model_name_or_path ast-tiny" in markdown


def test_soft_add_probe_records_gradient_norms_and_pair_shares(tmp_path):
    from hf_add.research import soft_add_probe

    from .audio_fixtures import write_audiofolder

    data = write_audiofolder(tmp_path / "data", ["yes", "no", "up"], 6, seconds=0.3)
    output = tmp_path / "probe.json"
    argv = ["--model_name_or_path", "ast-tiny", "--ast_max_length", "40", "--dataset_name", "audiofolder",
            "--data_dir", str(data), "--fold_column", "fold", "--cv_folds", "1", "--loss", "add", "--mixup", "0.5",
            "--max_steps", "3", "--per_device_train_batch_size", "9", "--output_dir", str(tmp_path / "run"),
            "--report_to", "none", "--use_cpu", "true", "--save_strategy", "no"]  # fmt: skip
    soft_add_probe.main(["--output", str(output), "--probe_every", "1", "--", *argv])
    records = json.loads(output.read_text())["records"]
    assert [r["step"] for r in records] == [0, 1, 2]
    for record in records:
        assert record["grad_norm_classification"] > 0 and record["grad_norm_mu"] > 0
        shares = [record[f"{kind}_pairs_share"] for kind in soft_add_probe.PAIR_TYPES]
        assert sum(shares) == pytest.approx(1.0)  # every ordered pair has one type
        sums = [record[f"{kind}_L_mu_share"] for kind in soft_add_probe.PAIR_TYPES]
        assert sum(sums) == pytest.approx(1.0)


def test_pair_types_by_hand():
    from hf_add.research.soft_add_probe import pair_types

    labels = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.5, 0.5]])
    kinds = pair_types(labels)
    assert kinds["positive"].nonzero().tolist() == [[0, 1], [1, 0]]
    assert kinds["negative"].sum() == 4 and kinds["mixed"].sum() == 6  # (0,2),(2,0),(1,2),(2,1); row/col 3


def test_pretrain_makes_a_backbone_that_hf_add_train_fine_tunes(tmp_path):
    from safetensors.torch import load_file

    from hf_add.commands.train import main as train
    from hf_add.data.presets import SPEECH_COMMANDS_WORDS
    from hf_add.research import pretrain

    assert len(pretrain.PRETRAIN_WORDS) >= 200 and not set(pretrain.PRETRAIN_WORDS) & set(
        SPEECH_COMMANDS_WORDS
    )
    backbone = tmp_path / "backbone"
    pretrain.main(["--output_dir", str(backbone), "--model", "ast-tiny", "--words", "3", "--clips_per_word", "10",
                   "--num_voices", "10", "--max_steps", "2"])  # fmt: skip
    with open(backbone / "data" / "metadata.csv") as f:
        voices = {row["voice"] for row in csv.DictReader(f)}
    assert voices and not voices & pretrain.study_test_voices()  # never the study's test voices
    assert json.loads((backbone / "config.json").read_text())["id2label"] == {
        "0": "apple",
        "1": "arm",
        "2": "art",
    }

    from .audio_fixtures import write_audiofolder

    target = write_audiofolder(tmp_path / "target", ["yes", "no"], 4, seconds=0.5)
    run = tmp_path / "run"
    train(["--model_name_or_path", str(backbone), "--ast_max_length", "100", "--dataset_name", "audiofolder", "--data_dir", str(target),
           "--fold_column", "fold", "--cv_folds", "1", "--loss", "ce", "--max_steps", "1", "--learning_rate", "0",
           "--output_dir", str(run), "--report_to", "none", "--use_cpu", "true", "--save_strategy", "no"])  # fmt: skip
    pretrained, fine_tuned = (
        load_file(str(backbone / "model.safetensors")),
        load_file(str(run / "fold1" / "model.safetensors")),
    )
    assert json.loads((run / "fold1" / "config.json").read_text())["id2label"] == {"0": "no", "1": "yes"}
    encoder = [name for name in pretrained if "classifier" not in name]
    assert encoder and all(torch.equal(pretrained[name], fine_tuned[name]) for name in encoder)  # lr 0: kept
    assert fine_tuned["classifier.dense.weight"].shape[0] == 2  # a new head for the target labels


@pytest.mark.parametrize(("df", "expected"), [(1, 12.706), (2, 4.303), (4, 2.776), (9, 2.262), (30, 2.042)])
def test_t_quantile_matches_the_printed_table(df, expected):
    from hf_add.research.paired import t_quantile

    assert t_quantile(0.975, df) == pytest.approx(expected, abs=1e-3)


def test_paired_difference_interval_holds_zero_only_for_noisy_differences():
    from hf_add.research.paired import PairedDifference

    consistent = PairedDifference.of([2.0, 3.0, 2.5, 3.5, 2.0], [0.0, 0.0, 0.0, 0.0, 0.0])
    assert consistent.favouring == 5 and consistent.low > 0
    noisy = PairedDifference.of([5.0, -4.0, 3.0], [0.0, 0.0, 0.0])
    assert noisy.favouring == 2 and noisy.low < 0 < noisy.high
    assert PairedDifference.of([1.0], [0.0]).low is None


def test_sign_test_and_seeds_needed_by_hand():
    from hf_add.research.paired import PairedDifference, sign_test_p

    assert sign_test_p(9, 1) == pytest.approx(2 * (1 + 10) / 1024)  # P(≤ 1 of 10) both ways
    assert sign_test_p(5, 5) == 1.0 and sign_test_p(0, 0) == 1.0
    difference = PairedDifference.of([5.0, 0.0, 10.0], [0.0, 0.0, 0.0])  # sample std 5
    assert difference.std == pytest.approx(5.0)
    assert difference.seeds_for_half_width(0.5) == 385  # ⌈(1.96 · 5 / 0.5)²⌉ = ⌈384.1⌉


def test_a_model_directory_gets_the_pretrained_rows(tmp_path, monkeypatch):
    class RowsChosen(Exception):
        pass

    def fake_run(recipe, study_dir, row, seed):
        trained.append((recipe.model, row))
        return {"accuracy": 0.5}

    def stop(runs):
        raise RowsChosen

    trained = []
    monkeypatch.setattr(study, "run_one", fake_run)
    monkeypatch.setattr(study, "summarize", stop)
    (tmp_path / "data").mkdir()
    (tmp_path / "backbone").mkdir()
    (tmp_path / "backbone" / "config.json").write_text("{}")
    with pytest.raises(RowsChosen):
        study.main(
            [
                "--output_dir",
                str(tmp_path),
                "--model_name_or_path",
                str(tmp_path / "backbone"),
                "--seeds",
                "1",
            ]
        )
    assert trained == [(str(tmp_path / "backbone"), row) for row in study.ROW_SETS["pretrained"]]
    trained.clear()
    with pytest.raises(RowsChosen):
        study.main(["--output_dir", str(tmp_path), "--model", "ast-tiny", "--seeds", "1"])
    assert [row for _, row in trained] == study.ROW_SETS["from-scratch"]


def test_a_missing_backbone_is_named_before_any_data_is_made(tmp_path):
    with pytest.raises(ValueError, match="no model directory './nothing-here'"):
        study.main(["--output_dir", str(tmp_path), "--model_name_or_path", "./nothing-here"])
    assert not (tmp_path / "data").exists()


def test_soft_rows_are_also_paired_with_ce_under_the_same_mixup(tmp_path):
    accuracies = {"CE": [0.80, 0.82], "CE, mixup 0.2": [0.70, 0.74], "ADD soft, mixup 0.2": [0.75, 0.75]}
    runs = [
        {"row": row, "seed": seed, "accuracy": value}
        for row, values in accuracies.items()
        for seed, value in enumerate(values)
    ]
    assert study.matching_baseline("ADD soft, mixup 0.2") == "CE, mixup 0.2"
    assert (
        study.matching_baseline("CE, mixup 0.2") is None
        and study.matching_baseline("ADD λ={1,1,1,1}") is None
    )
    assert (
        study.matching_baseline("ADD λ={1,1,1,1}, batch 8 × 4 accumulated") == "CE, batch 8 × 4 accumulated"
    )
    assert study.matching_baseline("ADD λ={1,1,1,1}, class-balanced K=4") == "CE, class-balanced K=4"
    assert study.matching_baseline("ADD λ={1,1,1,1}×2") is None
    comparison = study.paired(runs)
    assert "| ADD soft, mixup 0.2 | CE | 2 | -6.00 |" in comparison  # (-5 - 7) / 2
    assert "| ADD soft, mixup 0.2 | CE, mixup 0.2 | 2 | +3.00 |" in comparison  # (+5 + 1) / 2
    assert "| ADD soft, mixup 0.2 | 75.00 | 75.00 |" in comparison


def test_pretraining_is_deterministic_from_its_seed(tmp_path):
    from safetensors.torch import load_file

    from hf_add.research import pretrain

    def backbone(name, seed):
        pretrain.main(["--output_dir", str(tmp_path / name), "--model", "ast-tiny", "--words", "3",
                       "--clips_per_word", "6", "--num_voices", "8", "--max_steps", "2", "--seed", str(seed)])  # fmt: skip
        return load_file(str(tmp_path / name / "model.safetensors"))

    first, again, other = backbone("a", 0), backbone("b", 0), backbone("c", 1)
    assert all(torch.equal(first[name], again[name]) for name in first)
    assert not all(torch.equal(first[name], other[name]) for name in first)
    assert (tmp_path / "a" / "data" / "metadata.csv").read_text() == (
        tmp_path / "b" / "data" / "metadata.csv"
    ).read_text()


def test_open_set_training_data_leaves_out_the_last_words_by_hard_links(tmp_path, monkeypatch):
    from .audio_fixtures import write_audiofolder

    words = list(study.SPEECH_COMMANDS_WORDS[:4])
    data = write_audiofolder(tmp_path / "data", words, n_per_label=2)
    (data / "clips").mkdir()  # make-dataset's layout: clips in a subfolder
    metadata = (data / "metadata.csv").read_text().splitlines()
    for i, line in enumerate(metadata[1:], start=1):
        name = line.split(",")[0]
        (data / name).rename(data / "clips" / name)
        metadata[i] = f"clips/{line}"
    (data / "metadata.csv").write_text("\n".join(metadata) + "\n")
    known = study.Recipe(data_dir=str(data), unknown_words=1)
    assert study.unknown_words(known) == [words[-1]]
    study.make_training_data(known)
    kept = (tmp_path / "data-known" / "metadata.csv").read_text().splitlines()
    assert len(kept) == 1 + 3 * 2 and not any(row.startswith(f"{words[-1]}_") for row in kept)
    first = kept[1].split(",")[0]
    assert os.path.samefile(tmp_path / "data" / first, tmp_path / "data-known" / first)
    assert known.training_data_dir == str(tmp_path / "data-known")


def spoken_metadata(words, speakers, partitions=("train", "train", "validation", "test")):
    """Rows shaped like make-dataset's metadata.csv: every word spoken by every speaker."""
    rows = []
    for word in words:
        for k, speaker in enumerate(speakers):
            rows.append({"file_name": f"clips/{word}_{k}.wav", "label": word, "speaker": speaker,
                         "partition": partitions[k % len(partitions)]})  # fmt: skip
    return rows


def test_low_data_view_keeps_the_first_training_clips_of_each_word(monkeypatch):
    words = list(study.SPEECH_COMMANDS_WORDS[:3])
    rows = spoken_metadata(words, [f"s{k}" for k in range(8)])  # 4 train, 2 validation, 2 test per word
    recipe = study.Recipe(data_dir="data", train_clips_per_word=1)
    kept = study.view_rows(recipe, rows)
    train = [row for row in kept if row["partition"] == "train"]
    assert [row["file_name"] for row in train] == [f"clips/{w}_0.wav" for w in words]
    assert len(kept) - len(train) == len(rows) - 4 * len(words)  # validation and test untouched
    assert recipe.training_data_dir == "data-clips1"


def test_speaker_view_classifies_voices_on_words_never_trained_on():
    words = list(study.SPEECH_COMMANDS_WORDS)
    rows = spoken_metadata(words, ["anna", "bo"])
    recipe = study.Recipe(data_dir="data/", task="speakers")
    kept = study.view_rows(recipe, rows)
    assert {row["label"] for row in kept} == {"anna", "bo"}
    by_partition = {
        p: {row["word"] for row in kept if row["partition"] == p} for p in ("train", "validation", "test")
    }
    assert [len(by_partition[p]) for p in ("train", "validation", "test")] == [25, 5, 5]
    assert not by_partition["train"] & by_partition["test"]  # the test utterances are words never trained on
    assert recipe.training_data_dir == "data-speakers"


def test_a_rows_batch_settings_win_over_the_recipes(tmp_path):
    settings = study.run_settings(recipe(tmp_path), "ADD λ={1,1,1,1}, batch 8 × 4 accumulated", 0, "out")
    assert settings["per_device_train_batch_size"] == 8 and settings["gradient_accumulation_steps"] == 4
    plain = study.run_settings(recipe(tmp_path), "CE", 0, "out")
    assert plain["per_device_train_batch_size"] == 32 and "gradient_accumulation_steps" not in plain
    assert study.run_settings(recipe(tmp_path), "ADD λ={1,1,1,1}×0.5", 0, "out")["add_lambdas"] == [0.5] * 4
