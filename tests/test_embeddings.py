"""What the embedding space is good for, through the command line: `hf-add evaluate` (per-class results,
retrieval, open-set scores) and `hf-add embed` (one row per clip), checked against brute force on the
exported embeddings."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from datasets import Dataset

from hf_add.cli import main
from hf_add.plots import plot_confusion_matrix

from .audio_fixtures import write_audiofolder

WORDS = ["no", "up", "yes"]


@pytest.fixture(scope="module")
def open_set(tmp_path_factory):
    """A model trained on two words ("no", "yes"), and data with a third it never heard ("up")."""
    root = tmp_path_factory.mktemp("open_set")
    known = write_audiofolder(root / "known", ["no", "yes"], n_per_label=8, num_folds=2)
    every = write_audiofolder(root / "every", WORDS, n_per_label=8, num_folds=2, seed=1)
    output = root / "run"
    argv = [
        "train",
        "--model_name_or_path",
        "ast-tiny",
        "--ast_max_length",
        "100",
        "--dataset_name",
        "audiofolder",
    ]
    argv += ["--data_dir", str(known), "--fold_column", "fold", "--cv_folds", "1", "--loss", "add"]
    argv += ["--max_steps", "6", "--per_device_train_batch_size", "8", "--learning_rate", "3e-3"]
    argv += ["--output_dir", str(output), "--report_to", "none", "--save_strategy", "no", "--use_cpu", "true"]
    assert main(argv) == 0
    return output / "fold1", every


def brute_force_precision_at_1(embeddings: np.ndarray, labels: list[str]) -> float:
    unit = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
    similarity = unit @ unit.T
    np.fill_diagonal(similarity, -np.inf)
    return float(np.mean([labels[j] == labels[i] for i, j in enumerate(similarity.argmax(1))]))


def test_embed_writes_one_row_per_clip_that_pandas_and_datasets_read(open_set, tmp_path):
    model, data = open_set
    parquet = tmp_path / "embeddings.parquet"
    assert (
        main(["embed", str(model), "--data_dir", str(data), "--split", "train", "--output", str(parquet)])
        == 0
    )
    frame = pd.read_parquet(parquet)
    assert list(frame.columns) == ["embedding", "label", "file"] and len(frame) == 24
    assert sorted(set(frame["label"])) == WORDS
    assert all(str(path).endswith(".wav") for path in frame["file"])
    table = Dataset.from_parquet(str(parquet))
    assert len(table[0]["embedding"]) == 32  # ast-tiny's hidden size: the head's input
    assert str(table.features["embedding"].feature.dtype) == "float32"


def test_evaluate_reports_per_class_results_and_retrieval_equal_to_brute_force(open_set, tmp_path):
    model, data = open_set
    report, parquet, png = tmp_path / "eval.json", tmp_path / "e.parquet", tmp_path / "confusion.png"
    common = [str(model), "--data_dir", str(data), "--split", "train"]
    assert main(["embed", *common, "--output", str(parquet)]) == 0
    assert main(["evaluate", *common, "--unknown_classes", "up", "--reference_split", "train",
                 "--output", str(report), "--confusion_matrix", str(png)]) == 0  # fmt: skip
    result = json.loads(report.read_text())
    frame = pd.read_parquet(parquet)
    known = frame[frame["label"] != "up"]
    embeddings, labels = np.stack(known["embedding"]), list(known["label"])
    assert result["num_samples"] == 16
    assert result["precision_at_1"] == pytest.approx(brute_force_precision_at_1(embeddings, labels))
    matrix = np.asarray(result["confusion_matrix"])
    assert matrix.shape == (2, 2) and matrix.sum() == 16 and result["class_names"] == ["no", "yes"]
    per_class = result["per_class_accuracy"]
    assert per_class["no"] == pytest.approx(matrix[0, 0] / matrix[0].sum())
    assert result["accuracy"] == pytest.approx(np.trace(matrix) / 16)
    for name in ("map_at_r", "r_precision", "knn_accuracy", "nearest_class_mean_accuracy", "nmi", "macro_f1"):
        assert 0.0 <= result[name] <= 1.0, name
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # Open set: novelty = 1 - max cosine to the known classes' means (of unit vectors, reference split).
    unit = np.stack(frame["embedding"]) / np.linalg.norm(np.stack(frame["embedding"]), axis=1, keepdims=True)
    means = np.stack([unit[frame["label"] == name].mean(0) for name in ("no", "yes")])
    means /= np.linalg.norm(means, axis=1, keepdims=True)
    novelty = 1.0 - (unit @ means.T).max(1)
    positive, negative = novelty[frame["label"] == "up"], novelty[frame["label"] != "up"]
    pairs = (positive[:, None] > negative[None]).mean() + 0.5 * (positive[:, None] == negative[None]).mean()
    open_set_result = result["open_set"]
    assert open_set_result["num_unknown"] == 8 and open_set_result["num_known"] == 16
    assert open_set_result["cosine"]["auroc"] == pytest.approx(pairs, abs=1e-9)
    assert 0.0 <= open_set_result["mahalanobis"]["auroc"] <= 1.0


def test_unknown_classes_need_clips_of_both_kinds(open_set):
    model, data = open_set
    with pytest.raises(ValueError, match="known and of unknown classes"):
        main(
            [
                "evaluate",
                str(model),
                "--data_dir",
                str(data),
                "--split",
                "train",
                "--unknown_classes",
                "no,up,yes",
            ]
        )


def test_confusion_matrix_png_is_readable_at_50_classes(tmp_path):
    rng = np.random.default_rng(0)
    names = [f"class_{i}" for i in range(50)]
    matrix = (np.eye(50) * 20 + rng.integers(0, 3, (50, 50))).astype(int).tolist()
    path = plot_confusion_matrix(matrix, names, str(tmp_path / "c.png"))
    from PIL import Image

    width, height = Image.open(path).size
    assert width >= 50 * 12 and height >= 50 * 12  # at least 12 px a cell at 120 dpi
