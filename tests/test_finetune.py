"""hf_add.runs and hf-add train (cross-validated runs, results.json) and hf_add.research.table2 (Table 1 configurations)."""

from __future__ import annotations

import json

import pytest
import torch
import yaml

from hf_add.commands.train import main, parse_config
from hf_add.losses import ADDLoss, FocalLoss, OrthogonalProjectionLoss
from hf_add.research.table2 import CELLS
from hf_add.research.table2 import main as table2_main
from hf_add.runs import LossSettings, RunConfig, build_losses

from .audio_fixtures import write_audiofolder

ARGS = [
    "--dataset_name", "audiofolder", "--fold_column", "fold", "--model_name_or_path", "ast-tiny",
    "--ast_max_length", "64", "--cv_folds", "2", "--max_steps", "2", "--per_device_train_batch_size", "4",
    "--mixup", "0.5", "--freq_mask", "8", "--time_mask", "8", "--loss", "add", "--report_to", "none",
    "--use_cpu", "true",
]  # fmt: skip


def test_cross_validation_writes_results_and_skips_corrupt_clips(tmp_path):
    root = write_audiofolder(
        tmp_path / "data", ["left", "right", "up"], 4, sample_rates=(16000, 44100), channels=(1, 2), seconds=0.3,
        extra_rows=[{"file_name": "corrupt.wav", "label": "left", "fold": 1, "bytes": b"\x00" * 64}],
    )  # fmt: skip
    out = tmp_path / "run"
    argv = [*ARGS, "--data_dir", str(root), "--output_dir", str(out)]
    with pytest.raises(ValueError, match=r"(?s)corrupt\.wav.*--skip_corrupt"):
        main(argv)
    assert not (out / "results.json").exists()

    results = main([*argv, "--skip_corrupt"])
    assert json.loads((out / "results.json").read_text()) == json.loads(json.dumps(results))
    assert results["num_skipped_clips"] == 1 and results["recipe"] == "custom"
    (skipped,) = results["skipped_clips"]
    assert skipped["file"].endswith("corrupt.wav") and "cannot be decoded" in skipped["problem"]
    assert json.loads((out / "skipped_clips.json").read_text()) == results["skipped_clips"]
    assert [f["fold"] for f in results["folds"]] == ["fold1", "fold2"]
    for key in ("accuracy", "intra_class_mean_distance", "inter_class_cv"):
        assert set(results["mean"]) == set(results["std"]) and key in results["mean"]
        values = torch.tensor([f[key] for f in results["folds"]])
        assert results["mean"][key] == pytest.approx(values.mean().item(), rel=1e-6)
        assert results["std"][key] == pytest.approx(values.std(unbiased=True).item(), rel=1e-5, abs=1e-7)
    saved = json.loads((out / "fold1" / "config.json").read_text())
    assert (
        saved["id2label"] == {"0": "left", "1": "right", "2": "up"}
        and saved["hf_add_training"]["embedding_loss"]
    )
    assert (out / "fold2" / "preprocessor_config.json").exists()
    card = (out / "fold2" / "README.md").read_text()
    assert "λ" in card and f"{100 * results['folds'][1]['accuracy']:.2f}" in card


def test_yaml_config_parses_like_the_command_line(tmp_path):
    flags = dict(zip(ARGS[::2], ARGS[1::2], strict=True))
    config = {key.removeprefix("--"): yaml.safe_load(value) for key, value in flags.items()}
    config.update(output_dir=str(tmp_path), add_lambdas=[1, 0, 1, 0], cv_folds=2, mixup=0.5)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    from_yaml = parse_config([str(tmp_path / "config.yaml")])
    from_cli = parse_config([*ARGS, "--output_dir", str(tmp_path), "--add_lambdas", "1", "0", "1", "0"])
    for group in ("model", "data", "loss", "augmentation", "schedule"):
        assert getattr(from_yaml, group) == getattr(from_cli, group)
    assert from_yaml.loss.add_lambdas == [1, 0, 1, 0]


def test_losses_from_arguments():
    embedding, classification = build_losses(
        LossSettings(loss="add", add_lambdas=[1, 0, 2, 0], add_lambda_mu=3)
    )
    assert isinstance(embedding, ADDLoss) and classification is None  # ADDTrainer's: ce, bce if multi-label
    assert (embedding.lambda_mu_p, embedding.lambda_sigma_p, embedding.lambda_mu_n, embedding.lambda_mu) == (
        1,
        0,
        2,
        3,
    )
    embedding, classification = build_losses(LossSettings(loss="focal", focal_gamma=2))
    assert embedding is None and isinstance(classification, FocalLoss) and classification.gamma == 2
    embedding, _ = build_losses(LossSettings(loss="opl"))
    assert isinstance(embedding, OrthogonalProjectionLoss) and (
        embedding.gamma,
        embedding.weight,
    ) == (2, 0.1)
    z, y = torch.randn(6, 4), torch.tensor([0, 0, 1, 1, 2, 2])
    torch.testing.assert_close(embedding(z, y), 0.1 * OrthogonalProjectionLoss(gamma=2)(z, y))
    with pytest.raises(ValueError, match="soft labels"):
        build_losses(LossSettings(loss="opl"), mixup=0.5)


# Table 1 of the paper, written out here: (model, dataset) -> hyperparameters.
TABLE1 = {
    ("ast", "esc50"): dict(freq_mask=24, time_mask=96, mixup=0.0, lr=7e-4),
    ("ast", "ks2"): dict(freq_mask=48, time_mask=48, mixup=0.5, lr=6e-5),
    ("ast", "er"): dict(freq_mask=24, time_mask=96, mixup=0.0, lr=7e-4),
    ("beats", "esc50"): dict(freq_mask=0, time_mask=0, mixup=0.0, lr=8e-6),
    ("beats", "ks2"): dict(freq_mask=0, time_mask=0, mixup=0.5, lr=1e-4),
    ("beats", "er"): dict(freq_mask=0, time_mask=0, mixup=0.0, lr=8e-6),
}
TABLE1_MODEL = {
    "ast": dict(window="hanning", epochs=25, batch=32, optimizer="adamw", betas=(0.9, 0.98), wd=1e-2),
    "beats": dict(window="povey", epochs=30, batch=16, optimizer="adam", betas=(0.95, 0.999), wd=5e-6),
}


def test_table2_dry_run_matches_table1_for_all_20_cells(capsys):
    assert len(CELLS) == 20
    for dataset, model, loss in CELLS:
        table2_main(["--dataset", dataset, "--model", model, "--loss", loss, "--seeds", "2", "--dry_run"])
        printed = json.loads(capsys.readouterr().out)
        row, common = TABLE1[model, dataset], TABLE1_MODEL[model]
        assert printed["table1"]["window"] == common["window"]
        for seed, run in enumerate(printed["runs"]):
            config = RunConfig.from_values(run)
            recipe, training, augmentation = config.schedule, config.training, config.augmentation
            assert (config.data.dataset, config.loss.loss, recipe.recipe, training.seed) == (
                dataset,
                loss,
                "paper",
                seed,
            )
            assert (augmentation.freq_mask, augmentation.time_mask, augmentation.mixup) == (
                row["freq_mask"], row["time_mask"], row["mixup"]
            )  # fmt: skip
            assert training.learning_rate == row["lr"] and recipe.optimizer == common["optimizer"]
            assert training.num_train_epochs == common["epochs"]
            assert training.per_device_train_batch_size == common["batch"]
            assert (training.adam_beta1, training.adam_beta2) == common["betas"]
            assert training.weight_decay == common["wd"]
        if model == "ast":
            assert printed["runs"][0]["model_name_or_path"] == "MIT/ast-finetuned-audioset-10-10-0.4593"
    with pytest.raises(ValueError, match="not run on KS2"):
        table2_main(["--dataset", "ks2", "--model", "ast", "--loss", "focal", "--dry_run"])


def test_table2_authors_recipe(capsys):
    table2_main(["--dataset", "ks2", "--model", "ast", "--loss", "add", "--recipe", "authors", "--dry_run"])
    run = json.loads(capsys.readouterr().out)["runs"][0]
    assert (run["optimizer"], run["learning_rate"], run["num_train_epochs"]) == ("adam", 6.25e-5, 30)
    assert (run["classification_loss"], run["lr_schedule"], run["warmup_epochs"]) == ("bce", "exponential", 5)
    assert run["recipe"] == "authors"
