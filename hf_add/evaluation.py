"""Evaluate a saved audio classifier on a dataset split: accuracy and embedding geometry."""

from __future__ import annotations

import torch
from datasets import Audio, ClassLabel, Dataset
from tqdm.auto import tqdm
from transformers import AutoFeatureExtractor, AutoModelForAudioClassification

from hf_add.capture import EmbeddingCapture
from hf_add.geometry import embedding_geometry

SAMPLING_RATE = 16_000


def label_ids_by_name(dataset: Dataset, label_column: str, label2id: dict[str, int]) -> list[int]:
    """The model's class id of every row, matched by label NAME (never by position)."""
    feature = dataset.features[label_column]
    names = dataset[label_column]
    if isinstance(feature, ClassLabel):
        names = feature.int2str(names)
    names = [str(name) for name in names]
    unknown = sorted(set(names) - set(label2id))
    if unknown:
        raise ValueError(
            f"labels {unknown[:10]} of column {label_column!r} are not among the model's classes "
            f"{sorted(label2id)[:10]}...; evaluate on a dataset with the model's label set"
        )
    return [label2id[name] for name in names]


@torch.no_grad()
def evaluate_model(
    model_name_or_path: str,
    dataset: Dataset,
    *,
    audio_column: str = "audio",
    label_column: str = "label",
    batch_size: int = 16,
    embedding_module: str = "classifier",
    device: str | None = None,
) -> dict:
    """Accuracy and the ``embedding_geometry`` of the head's input over ``dataset``.

    Returns {"accuracy", "num_samples", "geometry": {summaries}, "class_names", "mean_distance",
    "cv_distance"} (matrices as nested lists, for JSON and plotting).
    """
    import hf_add  # noqa: F401  (registers BEATs with the Auto classes)

    for column in (audio_column, label_column):
        if column not in dataset.column_names:
            raise ValueError(f"the dataset has no column {column!r}; its columns are {dataset.column_names}")
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    model = AutoModelForAudioClassification.from_pretrained(model_name_or_path).to(device).eval()
    extractor = AutoFeatureExtractor.from_pretrained(model_name_or_path)
    label2id = {str(name): int(i) for name, i in model.config.label2id.items()}
    labels = torch.tensor(label_ids_by_name(dataset, label_column, label2id))
    dataset = dataset.cast_column(audio_column, Audio(sampling_rate=SAMPLING_RATE, num_channels=1))
    capture = EmbeddingCapture(model, embedding_module)

    embeddings, predictions = [], []
    for start in tqdm(range(0, len(dataset), batch_size), desc="evaluating", unit="batch"):
        rows = dataset[start : start + batch_size][audio_column]
        waveforms = [_samples(row) for row in rows]
        features = extractor(
            waveforms, sampling_rate=SAMPLING_RATE, return_tensors="pt", **_padding_for(extractor)
        ).to(device)
        logits = model(**features).logits
        embeddings.append(capture.pop().float().cpu())
        predictions.append(logits.argmax(-1).cpu())
    capture.remove()

    embeddings, predictions = torch.cat(embeddings), torch.cat(predictions)
    geometry = embedding_geometry(embeddings, labels, num_classes=len(label2id))
    id2label = {int(i): name for i, name in model.config.id2label.items()}
    return {
        "model": model_name_or_path,
        "num_samples": len(labels),
        "accuracy": (predictions == labels).float().mean().item(),
        "geometry": {k: v for k, v in geometry.items() if isinstance(v, float)},
        "class_names": [id2label[i] for i in range(len(id2label))],
        "mean_distance": geometry["mean_distance"].tolist(),
        "cv_distance": geometry["cv_distance"].tolist(),
    }


def _samples(row) -> torch.Tensor:
    """The waveform of one decoded audio cell (a torchcodec decoder or a dict), as a 1-D array."""
    if isinstance(row, dict):
        return row["array"]
    return row.get_all_samples().data.mean(dim=0).numpy()


def _padding_for(extractor) -> dict:
    # AST pads/truncates to its fixed number of frames by itself; others pad to the longest clip.
    return {} if type(extractor).__name__ == "ASTFeatureExtractor" else {"padding": "longest"}
