"""Evaluate a saved audio classifier on a dataset split: accuracy and embedding geometry."""

from __future__ import annotations

from contextlib import nullcontext

import torch
from datasets import ClassLabel, Dataset
from tqdm.auto import tqdm
from transformers import ASTFeatureExtractor, AutoFeatureExtractor, AutoModelForAudioClassification

from hf_add.capture import EmbeddingCapture
from hf_add.data.audio import WAVEFORM_COLUMN, decode_and_check
from hf_add.data.collator import AudioClassificationCollator
from hf_add.data.presets import natural_sort_key
from hf_add.geometry import embedding_geometry
from hf_add.models.beats import BeatsFeatureExtractor

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


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
            f"{sorted(label2id, key=natural_sort_key)[:10]}...; evaluate on a dataset with the model's label set"
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
    precision: str = "fp32",
) -> dict:
    """Accuracy and the ``embedding_geometry`` of the head's input over ``dataset``.

    Clips are decoded and checked as for training (``decode_and_check``, unless the dataset already has its
    ``waveform`` column) and batched by the training collator in evaluation mode, so features are those the
    model was evaluated on in training. With
    ``precision`` "bf16" / "fp16" the model runs under autocast, as ``Trainer`` evaluates with ``--bf16`` /
    ``--fp16``; "fp32" on the CPU reproduces the test accuracy that training wrote to results.json.

    Returns {"accuracy", "num_samples", "geometry": {summaries}, "class_names", "mean_distance",
    "cv_distance"} (matrices as nested lists, for JSON and plotting).
    """
    import hf_add  # noqa: F401  (registers BEATs with the Auto classes)

    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {sorted(PRECISIONS)}, got {precision!r}")
    columns = dataset.column_names
    for column in (WAVEFORM_COLUMN if WAVEFORM_COLUMN in columns else audio_column, label_column):
        if column not in columns:
            raise ValueError(f"the dataset has no column {column!r}; its columns are {columns}")
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model = AutoModelForAudioClassification.from_pretrained(model_name_or_path).to(device).eval()
    extractor = AutoFeatureExtractor.from_pretrained(model_name_or_path)
    label2id = {str(name): int(i) for name, i in model.config.label2id.items()}
    labels = torch.tensor(label_ids_by_name(dataset, label_column, label2id))
    if WAVEFORM_COLUMN not in columns:
        dataset, _ = decode_and_check(dataset, "evaluation", audio_column)
    collator = AudioClassificationCollator(
        extractor,
        num_labels=len(label2id),
        audio_column=audio_column,
        extractor_kwargs=evaluation_kwargs(extractor),
    ).eval()
    batches = torch.utils.data.DataLoader(
        collator.prepare(dataset, with_labels=False), batch_size=batch_size, collate_fn=collator
    )
    capture = EmbeddingCapture(model, embedding_module)
    dtype = PRECISIONS[precision]
    autocast = torch.autocast(device.type, dtype=dtype) if dtype is not None else nullcontext()

    embeddings, predictions = [], []
    for batch in tqdm(batches, desc="evaluating", unit="batch"):
        with autocast:
            logits = model(**{k: v.to(device) for k, v in batch.items()}).logits
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
        "geometry": geometry.summaries(),
        "class_names": [id2label[i] for i in range(len(id2label))],
        "mean_distance": geometry.mean_distance.tolist(),
        "cv_distance": geometry.cv_distance.tolist(),
    }


def evaluation_kwargs(extractor) -> dict:
    """Padding for extractors that do not fix their input length by themselves (AST has a fixed number of
    frames; BEATs pads to the longest clip and cuts at the ``max_length`` saved by training)."""
    return (
        {} if isinstance(extractor, (ASTFeatureExtractor, BeatsFeatureExtractor)) else {"padding": "longest"}
    )
