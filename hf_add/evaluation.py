"""Evaluate a saved audio classifier on a dataset split, and export its embeddings.

One forward pass (``embed_split``) gives the head's input and the logits of every clip; ``evaluate_model``
turns them into the head's results (accuracy, macro F1, per-class accuracy, confusion matrix; mAP and F1 for
multi-label models), the Figure 5 geometry, what the embedding space is good for (retrieval, clustering,
kNN and nearest-class-mean classification, see ``hf_add.embedding_metrics``) and open-set scores;
``embeddings_table`` turns them into one row per clip for other tools.
"""

from __future__ import annotations

import os
from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np
import torch
from datasets import Audio, ClassLabel, Dataset, Sequence
from tqdm.auto import tqdm
from transformers import AutoFeatureExtractor, AutoModelForAudioClassification

from hf_add.capture import EmbeddingCapture
from hf_add.classification_metrics import classification_metrics, multi_label_metrics
from hf_add.data.audio import WAVEFORM_COLUMN, decode_and_check
from hf_add.data.collator import AudioClassificationCollator
from hf_add.data.presets import natural_sort_key
from hf_add.embedding_metrics import (
    cosine_novelty,
    mahalanobis_novelty,
    open_set_metrics,
    reported_embedding_metrics,
)
from hf_add.files import atomic_write
from hf_add.geometry import embedding_geometry
from hf_add.models.loading import extractor_kwargs

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
MULTI_LABEL = "multi_label_classification"


@dataclass
class EmbeddedSplit:
    """The model's view of a split: the head's input (N, d) and the logits (N, C), in row order."""

    embeddings: torch.Tensor
    logits: torch.Tensor
    class_names: list[str]
    multi_label: bool


def label_names(dataset: Dataset, label_column: str) -> list[str] | list[list[str]]:
    """Every row's label name (class-id and string columns), or list of names (multi-label rows)."""
    feature = dataset.features[label_column]
    values = dataset[label_column]
    inner = getattr(feature, "feature", None)
    if isinstance(feature, ClassLabel):
        return feature.int2str(values)
    if isinstance(inner, ClassLabel):
        return [inner.int2str(list(row)) for row in values]
    if isinstance(feature, Sequence) or (values and isinstance(values[0], list)):
        return [[str(name) for name in row] for row in values]
    return [str(name) for name in values]


def label_ids_by_name(dataset: Dataset, label_column: str, label2id: dict[str, int]) -> list[int]:
    """The model's class id of every row, matched by label NAME (never by position)."""
    names = label_names(dataset, label_column)
    unknown = sorted(set(names) - set(label2id))
    if unknown:
        raise ValueError(
            f"labels {unknown[:10]} of column {label_column!r} are not among the model's classes "
            f"{sorted(label2id, key=natural_sort_key)[:10]}...; evaluate on a dataset with the model's label "
            "set, or name the classes the model never saw with --unknown_classes"
        )
    return [label2id[name] for name in names]


@torch.no_grad()
def embed_split(
    model_name_or_path: str,
    dataset: Dataset,
    *,
    audio_column: str = "audio",
    batch_size: int = 16,
    embedding_module: str = "classifier",
    device: str | None = None,
    precision: str = "fp32",
) -> EmbeddedSplit:
    """The head's input and the logits of every clip of ``dataset``.

    Clips are decoded and checked as for training (``decode_and_check``, unless the dataset already has its
    ``waveform`` column) and batched by the training collator in evaluation mode, so the features are those
    the model was evaluated on in training. With ``precision`` "bf16" / "fp16" the model runs under
    autocast, as ``Trainer`` evaluates with ``--bf16`` / ``--fp16``.
    """
    import hf_add  # noqa: F401  (registers BEATs with the Auto classes)

    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {sorted(PRECISIONS)}, got {precision!r}")
    if WAVEFORM_COLUMN not in dataset.column_names:
        if audio_column not in dataset.column_names:
            raise ValueError(
                f"the dataset has no column {audio_column!r}; its columns are {dataset.column_names}"
            )
        dataset, _ = decode_and_check(dataset, "evaluation", audio_column)
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model = AutoModelForAudioClassification.from_pretrained(model_name_or_path).to(device).eval()
    extractor = AutoFeatureExtractor.from_pretrained(model_name_or_path)
    collator = AudioClassificationCollator(
        extractor, num_labels=model.config.num_labels, audio_column=audio_column,
        extractor_kwargs=extractor_kwargs(extractor),
    ).eval()  # fmt: skip
    batches = torch.utils.data.DataLoader(
        collator.prepare(dataset, with_labels=False), batch_size=batch_size, collate_fn=collator
    )
    capture = EmbeddingCapture(model, embedding_module)
    dtype = PRECISIONS[precision]
    autocast = torch.autocast(device.type, dtype=dtype) if dtype is not None else nullcontext()
    embeddings, logits = [], []
    try:
        for batch in tqdm(batches, desc="embedding", unit="batch"):
            with autocast:
                logits.append(model(**{k: v.to(device) for k, v in batch.items()}).logits.float().cpu())
            embeddings.append(capture.pop().float().cpu())
    finally:
        capture.remove()
    id2label = {int(i): str(name) for i, name in model.config.id2label.items()}
    return EmbeddedSplit(
        embeddings=torch.cat(embeddings),
        logits=torch.cat(logits),
        class_names=[id2label[i] for i in range(len(id2label))],
        multi_label=getattr(model.config, "problem_type", None) == MULTI_LABEL,
    )


def evaluate_model(
    model_name_or_path: str,
    dataset: Dataset,
    *,
    audio_column: str = "audio",
    label_column: str = "label",
    unknown_classes: tuple[str, ...] | list[str] = (),
    reference: Dataset | None = None,
    **embed_kwargs,
) -> dict:
    """The head's results, the embedding geometry and the embedding-space metrics of a model on ``dataset``.

    Single-label models: ``accuracy``, ``macro_f1``, ``per_class_accuracy`` (class name → value),
    ``confusion_matrix`` (rows = true class in id order), ``geometry`` (summaries) with ``mean_distance`` /
    ``cv_distance`` (matrices), and ``precision_at_1``, ``map_at_r``, ``r_precision``, ``knn_accuracy``,
    ``nearest_class_mean_accuracy`` and ``nmi`` (``hf_add.embedding_metrics.embedding_metrics``).
    Multi-label models (``config.problem_type``): ``map``, ``micro_f1``, ``macro_f1`` instead.

    Open set: clips of ``unknown_classes`` (classes of the data the model was not trained on) are left out
    of the metrics above and scored for novelty against the class means of ``reference`` (the training
    split; its clips of unknown classes are dropped): ``open_set`` holds AUROC and FPR at 95 % TPR of the
    cosine novelty (1 − max cosine to a class mean) and of the Mahalanobis score, unknown clips positive.
    ``embed_kwargs`` go to ``embed_split`` (batch_size, embedding_module, device, precision).
    """
    if label_column not in dataset.column_names:
        raise ValueError(
            f"the dataset has no column {label_column!r}; its columns are {dataset.column_names}"
        )
    unknown_classes = [str(name) for name in unknown_classes]
    if unknown_classes and reference is None:
        raise ValueError(
            "open-set scores need the reference split the class means come from (the training split)"
        )
    split = embed_split(model_name_or_path, dataset, audio_column=audio_column, **embed_kwargs)
    names = label_names(dataset, label_column)
    results = {"model": model_name_or_path, "class_names": split.class_names}
    if split.multi_label:
        if unknown_classes:
            raise ValueError("--unknown_classes is defined for single-label models only")
        targets = _multi_hot(names, split.class_names)
        return {**results, "num_samples": len(names), **multi_label_metrics(targets, split.logits)}

    unknown = np.array([name in unknown_classes for name in names])
    label2id = {name: i for i, name in enumerate(split.class_names)}
    known_rows = np.flatnonzero(~unknown)
    labels = torch.tensor(
        label_ids_by_name(dataset.select(known_rows), label_column, label2id), dtype=torch.long
    )
    embeddings = split.embeddings[known_rows]
    predictions = split.logits[known_rows].argmax(-1)
    geometry = embedding_geometry(embeddings, labels, num_classes=len(label2id))
    results.update(
        num_samples=len(labels),
        **classification_metrics(labels, predictions, split.class_names),
        geometry=geometry.summaries(),
        mean_distance=geometry.mean_distance.tolist(),
        cv_distance=geometry.cv_distance.tolist(),
        **reported_embedding_metrics(embeddings, labels),
    )
    if unknown_classes:
        results["open_set"] = _open_set(model_name_or_path, split.embeddings, unknown, reference, label_column,
                                        unknown_classes, audio_column, label2id, embed_kwargs)  # fmt: skip
    return results


def _open_set(model, embeddings, unknown, reference, label_column, unknown_classes, audio_column, label2id,
              embed_kwargs) -> dict:  # fmt: skip
    if not unknown.any() or unknown.all():
        raise ValueError(
            f"open-set scores need clips of known and of unknown classes; the evaluated split has "
            f"{int(unknown.sum())} of {len(unknown)} clips in --unknown_classes {unknown_classes}"
        )
    reference_names = label_names(reference, label_column)
    keep = np.flatnonzero([name not in unknown_classes for name in reference_names])
    reference = reference.select(keep)
    reference_split = embed_split(model, reference, audio_column=audio_column, **embed_kwargs)
    reference_labels = torch.tensor(label_ids_by_name(reference, label_column, label2id), dtype=torch.long)
    scores = {
        "cosine": cosine_novelty(embeddings, reference_split.embeddings, reference_labels),
        "mahalanobis": mahalanobis_novelty(embeddings, reference_split.embeddings, reference_labels),
    }
    return {
        "unknown_classes": unknown_classes,
        "num_known": int((~unknown).sum()),
        "num_unknown": int(unknown.sum()),
        "num_reference": len(reference),
        **{name: open_set_metrics(score, unknown) for name, score in scores.items()},
    }


def _multi_hot(names: list, class_names: list[str]) -> np.ndarray:
    """Multi-hot rows (N, C) of the model's classes from each row's label names."""
    label2id = {name: i for i, name in enumerate(class_names)}
    targets = np.zeros((len(names), len(class_names)), dtype=np.float32)
    for row, labels in enumerate(names):
        for name in [labels] if isinstance(labels, str) else labels:
            if name not in label2id:
                raise ValueError(
                    f"row {row}: label {name!r} is not one of the model's classes {class_names[:10]}..."
                )
            targets[row, label2id[name]] = 1.0
    return targets


def embeddings_table(dataset: Dataset, split: EmbeddedSplit, label_column: str, audio_column: str) -> Dataset:
    """One row per clip: ``embedding`` (the head's input, float32), ``label`` (the class name; a list of
    names for multi-label rows) and ``file`` (the clip's path, when it has one)."""
    files = dataset.cast_column(audio_column, Audio(decode=False))[audio_column]
    return Dataset.from_dict(
        {
            "embedding": split.embeddings.numpy().astype(np.float32),
            "label": label_names(dataset, label_column),
            "file": [value.get("path") if isinstance(value, dict) else None for value in files],
        }
    )


def export_embeddings(
    model_name_or_path: str,
    dataset: Dataset,
    output: str | os.PathLike,
    *,
    audio_column: str = "audio",
    label_column: str = "label",
    **embed_kwargs,
) -> Dataset:
    """Write ``embeddings_table`` of ``dataset`` to a Parquet file (atomically: never half a file), and
    return it. ``pandas.read_parquet(output)`` and ``datasets.Dataset.from_parquet(output)`` read it."""
    split = embed_split(model_name_or_path, dataset, audio_column=audio_column, **embed_kwargs)
    table = embeddings_table(dataset, split, label_column, audio_column)
    with atomic_write(output, "wb") as handle:
        table.to_parquet(handle)
    return table
