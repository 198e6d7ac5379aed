"""Dataset presets with the paper's evaluation protocols (§4.1), and the same fold logic for any audio dataset.

A preset turns a loaded ``DatasetDict`` into folds: per fold a train / (validation) / test ``Dataset`` with a
``ClassLabel`` column ``labels`` and ``id2label``. Labels are resolved by name, never by position, so a copy of
a dataset whose label order differs gives the same class ids.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
from datasets import Audio, ClassLabel, Dataset, DatasetDict, List, concatenate_datasets, load_dataset

from hf_add.data.audio import find_unusable_clips, resolve_unusable_clips
from hf_add.data.speech_commands_archive import is_speech_commands_archive, load_speech_commands_archive

logger = logging.getLogger(__name__)


@dataclass
class DatasetSpec:
    """Where an audio classification dataset lives and how it is split into folds.

    Protocols, in order of precedence: ``fold_splits`` (leave one split out: each listed split is the test
    set once), ``fold_column`` (k-fold cross-validation: each value of the column is the test set once), or
    the fixed ``train_split`` / ``validation_split`` / ``test_split``.
    """

    path: str
    config_name: str | None = None
    revision: str | None = None
    data_dir: str | None = None
    audio_column: str = "audio"
    label_column: str = "label"
    # Integer labels whose names are in another column (ESC-50: target -> category); classes keep the id order.
    label_names_column: str | None = None
    fold_column: str | None = None
    fold_splits: tuple[str, ...] = ()
    # A column that assigns each row of a single-split dataset to a split (an audiofolder whose metadata.csv
    # has e.g. partition = train / validation / test); its values become the split names.
    split_column: str | None = None
    train_split: str = "train"
    validation_split: str | None = None
    test_split: str | None = None
    # Fixed label set, by name; empty: the labels found in the data.
    class_names: tuple[str, ...] = ()
    # Raw label name (case-insensitive) -> class name, applied before checking the label set.
    label_aliases: dict[str, str] = field(default_factory=dict)
    # Raw label names whose rows are not part of the protocol.
    drop_labels: tuple[str, ...] = ()
    # Several labels per clip (multi-label tagging): the label column's text is split on this separator
    # ("dog;bark"). A list-valued label column is read as several labels without it.
    label_separator: str | None = None
    # AST input length in 10 ms frames, and the longest waveform (s) given to padding extractors (BEATs).
    ast_max_length: int = 1024
    max_seconds: float = 10.24
    # Which test set the test split is, where a dataset's sources differ (recorded in results.json and the
    # model card); substitute_test_set: it is not the paper's, and loading the data says so.
    test_set: str | None = None
    substitute_test_set: bool = False

    def load(self) -> DatasetDict:
        """``load_dataset`` with this spec's location (Hub id, ``audiofolder`` + ``data_dir``, ...), or the
        Speech Commands archive reader for ``path="speech_commands_archive"``."""
        if self.substitute_test_set:
            logger.warning(
                f"{self.path}: the test split is {self.test_set}. Accuracy on it is not comparable with the "
                "paper's; for the paper's test set pass --data_dir with the dataset's original files."
            )
        if self.path == SPEECH_COMMANDS_ARCHIVE:
            data = load_speech_commands_archive(self.data_dir)
        else:
            data = load_dataset(self.path, self.config_name, revision=self.revision, data_dir=self.data_dir)
        if self.split_column is None:
            return data
        folder = next((f for f in (self.data_dir, self.path) if f and os.path.isdir(f)), None)
        return split_by_column(data, self.split_column, folder)


def card_dataset(spec: DatasetSpec) -> tuple[str | None, str]:
    """(Hub dataset id or None, display name) for a model card: a card links Hub ids only, and names a
    local folder without linking it."""
    local = spec.data_dir is not None and os.path.isdir(spec.data_dir)
    if local or os.path.exists(spec.path) or spec.path in ("audiofolder", SPEECH_COMMANDS_ARCHIVE):
        folder = spec.data_dir if local else spec.path
        return None, os.path.basename(os.path.normpath(folder))  # a folder's name, never a local path
    return spec.path, spec.path + (f" ({spec.data_dir})" if spec.data_dir else "")


def split_by_column(data: DatasetDict, column: str, folder: str | None = None) -> DatasetDict:
    """One split per value of ``column`` (e.g. train / validation / test), from a single-split dataset.

    ``folder``: the local directory ``data`` was loaded from; if ``datasets`` split it by file names, the error
    says so (see ``splits_from_names``)."""
    if len(data) != 1:
        inferred = splits_from_names(folder) if folder else {}
        if inferred:
            raise ValueError(
                f"split_column {column!r} needs a dataset with one split, but datasets split {folder} into "
                f"{list(data)} by file and directory names (one of {split_keywords()} as a word in a name marks "
                f"a split): {describe_name_splits(folder, inferred)}. Rename "
                "them so that no name holds such a word (e.g. clips/000123.wav); from Python, "
                f"load_dataset('audiofolder', data_files={{'train': '{folder}/**'}}) keeps one split."
            )
        raise ValueError(f"split_column needs a dataset with one split, got splits {list(data)}")
    (dataset,) = data.values()
    if column not in dataset.column_names:
        raise ValueError(f"split_column {column!r} is not a column; the columns are {dataset.column_names}")
    values = np.asarray([str(value) for value in dataset[column]])
    return DatasetDict(
        {str(value): dataset.select(np.flatnonzero(values == value)) for value in np.unique(values)}
    )


def splits_from_names(folder: str) -> dict[str, list[str]]:
    """The splits that ``datasets`` infers from file and directory names in a local ``folder`` (a name holding
    train, test, validation, dev, eval, ... as a word, e.g. ``test_tone.wav`` or ``train/``), each with its
    files (paths relative to ``folder``); {} when it reads the folder as one split."""
    from datasets.data_files import DEFAULT_PATTERNS_ALL, get_data_patterns, resolve_pattern

    try:
        patterns = get_data_patterns(folder)
    except Exception:  # not a folder datasets can read: nothing inferred from names to explain
        return {}
    if {str(k): v for k, v in patterns.items()} == {str(k): v for k, v in DEFAULT_PATTERNS_ALL.items()}:
        return {}
    splits = {}
    for split, split_patterns in patterns.items():
        files = set()
        for pattern in split_patterns:
            with contextlib.suppress(FileNotFoundError):
                files.update(resolve_pattern(pattern, folder))
        splits[str(split)] = sorted(os.path.relpath(file, folder) for file in files)
    return splits


def split_keywords() -> str:
    from datasets.data_files import SPLIT_KEYWORDS

    return "/".join(keyword for keywords in SPLIT_KEYWORDS.values() for keyword in keywords)


def describe_name_splits(folder: str, splits: dict[str, list[str]], shown: int = 3) -> str:
    """'test' from 2 files (b_test.wav, test_tone.wav), ...; and how many files no name claimed."""
    parts = [
        f"{split!r} from {len(files)} file(s) ({', '.join(files[:shown])}{', ...' if len(files) > shown else ''})"
        for split, files in splits.items()
    ]
    claimed = {file for files in splits.values() for file in files}
    others = sum(
        os.path.relpath(os.path.join(root, name), folder) not in claimed
        for root, _, names in os.walk(folder)
        for name in names
    )
    return ", ".join(parts) + (
        f"; the other {others} file(s), metadata included, were left out" if others else ""
    )


SPEECH_COMMANDS_ARCHIVE = "speech_commands_archive"
# The 35 words of Speech Commands v2 (KS2), in the order of the class ids.
SPEECH_COMMANDS_WORDS = (
    "backward",
    "bed",
    "bird",
    "cat",
    "dog",
    "down",
    "eight",
    "five",
    "follow",
    "forward",
    "four",
    "go",
    "happy",
    "house",
    "learn",
    "left",
    "marvin",
    "nine",
    "no",
    "off",
    "on",
    "one",
    "right",
    "seven",
    "sheila",
    "six",
    "stop",
    "three",
    "tree",
    "two",
    "up",
    "visual",
    "wow",
    "yes",
    "zero",
)
KS2_HUB_TEST_SET = (
    "the Hub copy's test split: the separate 12-class test archive speech_commands_test_set_v0.02 "
    "(4,890 clips), not the paper's test set (the 11,005 clips of testing_list.txt)"
)
KS2_ARCHIVE_TEST_SET = "testing_list.txt of the original archive: the paper's test set"

IEMOCAP_OTHER_EMOTIONS = ("fru", "frustrated", "sur", "surprised", "fea", "fear", "dis", "disgust", "oth")
IEMOCAP_OTHER_EMOTIONS += ("other", "xxx")

PRESETS: dict[str, DatasetSpec] = {
    # 2,000 clips of 5 s, 50 classes; the standard 5-fold cross-validation over the `fold` column.
    "esc50": DatasetSpec(
        path="ashraq/esc50",
        label_column="target",
        label_names_column="category",
        fold_column="fold",
        ast_max_length=512,
        max_seconds=5.0,
    ),
    # Speech Commands v2, 35 words. `google/speech_commands` is a loading script, which datasets >= 4 no
    # longer runs; its Parquet conversion (refs/convert/parquet) holds v0.01/ and v0.02/ folders but no
    # README, so datasets knows only a `default` config that merges both versions under v0.01's 31 labels:
    # data_dir="v0.02" selects v0.02. Its train and validation splits are the paper's (plus `_silence_`
    # background-noise chunks, dropped), but its test split is not: see KS2_HUB_TEST_SET. With --data_dir
    # pointing at the original archive, get_spec reads that instead (the paper's 84,843 / 9,981 / 11,005).
    "ks2": DatasetSpec(
        path="google/speech_commands",
        revision="refs/convert/parquet",
        data_dir="v0.02",
        validation_split="validation",
        test_split="test",
        class_names=SPEECH_COMMANDS_WORDS,
        drop_labels=("_silence_",),
        test_set=KS2_HUB_TEST_SET,
        substitute_test_set=True,
        ast_max_length=128,
        max_seconds=1.0,
    ),
    # IEMOCAP 4-class emotion, leave-one-session-out (5 folds). Unofficial Hub copies order their labels
    # differently: classes are matched by name, and "excited" is merged into "happy" (the standard protocol).
    "er": DatasetSpec(
        path="Zahra99/IEMOCAP_Audio",
        fold_splits=tuple(f"session{i}" for i in range(1, 6)),
        class_names=("neutral", "happy", "angry", "sad"),
        label_aliases={
            "neu": "neutral",
            "hap": "happy",
            "exc": "happy",
            "excited": "happy",
            "happiness": "happy",
            "ang": "angry",
            "anger": "angry",
            "sadness": "sad",
        },
        drop_labels=IEMOCAP_OTHER_EMOTIONS,
        ast_max_length=1024,
        max_seconds=10.24,
    ),
}


@dataclass
class Fold:
    """One train/test partition of a protocol; ``labels`` is a ``ClassLabel`` column in every split."""

    name: str
    train: Dataset
    test: Dataset
    validation: Dataset | None
    id2label: dict[int, str]


def get_spec(preset: str | None = None, **overrides) -> DatasetSpec:
    """A preset by name with some fields replaced, or a spec built from ``overrides`` alone."""
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if preset is None:
        if "path" not in overrides:
            raise ValueError("Give a dataset preset (esc50, ks2, er) or a dataset name / audiofolder path")
        return DatasetSpec(**overrides)
    if preset not in PRESETS:
        raise ValueError(f"Unknown dataset preset {preset!r}; choose one of {sorted(PRESETS)}")
    spec = replace(PRESETS[preset], **overrides)
    return _ks2_source(spec, overrides) if preset == "ks2" and "data_dir" in overrides else spec


def _ks2_source(spec: DatasetSpec, overrides: dict) -> DatasetSpec:
    """``--dataset ks2 --data_dir DIR``: DIR is the extracted original archive, whose lists give the paper's
    split; any other ``data_dir`` is a folder of the Parquet copy (``v0.02``)."""
    if is_speech_commands_archive(spec.data_dir):
        return replace(
            spec,
            path=SPEECH_COMMANDS_ARCHIVE,
            config_name=None,
            revision=None,
            test_set=KS2_ARCHIVE_TEST_SET,
            substitute_test_set=False,
        )
    if "path" not in overrides and os.path.isdir(spec.data_dir):
        raise ValueError(
            f"{spec.data_dir} has no testing_list.txt, so it is not the extracted Speech Commands archive "
            "(word folders, validation_list.txt, testing_list.txt) that --dataset ks2 --data_dir takes. "
            "For a local copy of the Hub's Parquet branch pass --dataset_name DIR --data_dir v0.02 instead."
        )
    return spec


def describe_row(dataset: Dataset, index: int, audio_column: str) -> str:
    """'row 3 (dog_1.wav)': how an error message names an item."""
    if audio_column in dataset.column_names:
        value = dataset.cast_column(audio_column, Audio(decode=False))[index][audio_column]
        if value.get("path"):
            return f"row {index} ({value['path']})"
    return f"row {index}"


def _check_columns(dataset: Dataset, split: str, spec: DatasetSpec) -> None:
    wanted = [spec.audio_column, spec.label_column, spec.label_names_column]
    if spec.fold_column and not spec.fold_splits:
        wanted.append(spec.fold_column)
    missing = [c for c in wanted if c and c not in dataset.column_names]
    if missing:
        raise ValueError(
            f"Split {split!r} of {spec.path} has no column(s) {missing} (it has {dataset.column_names}). "
            "Pass the right --audio_column / --label_column / --fold_column, or another preset."
        )


def _raw_label_names(dataset: Dataset, split: str, spec: DatasetSpec) -> list[str]:
    feature = dataset.features[spec.label_column]
    values = dataset[spec.label_column]
    if isinstance(feature, ClassLabel):
        return [feature.int2str(v) for v in values]
    column = spec.label_names_column or spec.label_column
    names = list(dataset[column]) if spec.label_names_column else values
    for index, name in enumerate(names):
        if name is None or not str(name).strip():
            raise ValueError(
                f"Split {split!r}, {describe_row(dataset, index, spec.audio_column)}: the label ({column!r}) is "
                "empty. Give every clip a label, or remove the clip."
            )
    return [str(name) for name in names]


def _id_ordered_names(splits: dict[str, Dataset], spec: DatasetSpec) -> list[str]:
    """Class names ordered by their integer id, when names live in a separate column (ESC-50)."""
    names: dict[int, str] = {}
    for split, dataset in splits.items():
        for index, (target, name) in enumerate(
            zip(dataset[spec.label_column], dataset[spec.label_names_column], strict=True)
        ):
            if names.setdefault(int(target), name) != name:
                raise ValueError(
                    f"Split {split!r}, {describe_row(dataset, index, spec.audio_column)}: label {target} is "
                    f"named {name!r} but {names[int(target)]!r} elsewhere; fix {spec.label_names_column!r}."
                )
    return [names[k] for k in sorted(names)]


def _check_label_set(splits: dict[str, Dataset], spec: DatasetSpec, classes: list, aliases: dict) -> None:
    """A ClassLabel that cannot name every class of a fixed label set belongs to another version or
    configuration (Speech Commands v0.01's 30 words under the 35-word preset): stop before training."""
    for split, dataset in splits.items():
        feature = dataset.features[spec.label_column]
        if isinstance(feature, ClassLabel):
            named = {aliases.get(name.lower(), name) for name in feature.names}
            absent = [name for name in classes if name not in named]
            if absent:
                raise ValueError(
                    f"Split {split!r} of {spec.path}: its label set ({feature.num_classes} names) lacks "
                    f"{absent} of the {len(classes)} classes, so it is another version or configuration of "
                    "the dataset. Load the one with every class (Speech Commands: v2, the Hub copy's "
                    "data_dir='v0.02' or the speech_commands_v0.02 archive)."
                )


def natural_sort_key(name: str) -> tuple[list, str]:
    """The order of class names built from the data: runs of digits compare as numbers ("2" before "10",
    "class9" before "class10"), the text between them ignoring case ("apple" before "Banana"); names equal
    under that ("Dog" and "dog", "1" and "01") are ordered by their plain text."""
    parts = re.split(r"(\d+)", name)  # text, digits, text, ...: the same kinds at the same places
    return [int(part) if i % 2 else part.casefold() for i, part in enumerate(parts)], name


def is_multi_label(dataset: Dataset) -> bool:
    """A split made by ``attach_labels`` from multi-label data: its ``labels`` are lists of class ids."""
    return isinstance(dataset.features["labels"], List)


def _has_label_sets(splits: dict[str, Dataset], spec: DatasetSpec) -> bool:
    return spec.label_separator is not None or any(
        isinstance(dataset.features[spec.label_column], List) for dataset in splits.values()
    )


def _raw_label_sets(dataset: Dataset, split: str, spec: DatasetSpec) -> list[list[str]]:
    """Every row's label names: a list column's items, or the text split on ``spec.label_separator``."""
    feature = dataset.features[spec.label_column]
    values = dataset[spec.label_column]
    if isinstance(feature, List):
        inner = feature.feature
        return [
            [inner.int2str(v) if isinstance(inner, ClassLabel) else str(v) for v in row] for row in values
        ]
    if spec.label_separator is None or isinstance(feature, ClassLabel):
        raise ValueError(
            f"Split {split!r}: the label column {spec.label_column!r} holds one label per clip, but another split "
            "holds lists; give every split the same kind of label column"
        )
    separator = spec.label_separator
    return [[name.strip() for name in str(text or "").split(separator) if name.strip()] for text in values]


def _attach_label_sets(
    splits: dict[str, Dataset], spec: DatasetSpec, dropped, aliases
) -> tuple[dict, list[str]]:
    """Multi-label ``attach_labels``: ``labels`` becomes a list of class ids per clip; a dropped label leaves
    the clip's other labels, and a clip with no label keeps a row of zeros (see the trainer)."""
    named = {
        split: [[aliases.get(n.lower(), n) for n in row if n.lower() not in dropped] for row in
                _raw_label_sets(dataset, split, spec)]
        for split, dataset in splits.items()
    }  # fmt: skip
    if spec.class_names:
        classes = list(spec.class_names)
    else:
        classes = sorted({n for row in next(iter(named.values())) for n in row}, key=natural_sort_key)
    ids = {name: i for i, name in enumerate(classes)}
    result = {}
    for split, dataset in splits.items():
        for index, row in enumerate(named[split]):
            unknown = [name for name in row if name not in ids]
            if unknown:
                raise ValueError(
                    f"Split {split!r}, {describe_row(dataset, index, spec.audio_column)}: labels {unknown} are not "
                    f"among the {len(classes)} classes {classes[:10]}{'...' if len(classes) > 10 else ''}. Fix the "
                    "labels, list them in drop_labels / label_aliases, or pass the full class list."
                )
        unlabelled = sum(not row for row in named[split])
        if unlabelled:
            logger.info(f"{split}: {unlabelled} clips have no label (a row of zeros in training)")
        if "labels" in dataset.column_names:
            dataset = dataset.remove_columns("labels")
        ids_per_row = [sorted({ids[name] for name in row}) for row in named[split]]
        result[split] = dataset.add_column("labels", ids_per_row).cast_column(
            "labels", List(ClassLabel(names=classes))
        )
    return result, classes


def attach_labels(splits: dict[str, Dataset], spec: DatasetSpec) -> tuple[dict[str, Dataset], list[str]]:
    """Add the ``labels`` ClassLabel column to every split, drop protocol-excluded rows; return the classes.

    The class list is ``spec.class_names``, else the ids' order of a names column, else the names of the
    first split in natural order (``natural_sort_key``: 1, 2, 10). A label outside it raises, naming the row.
    Multi-label data (a list column, or ``spec.label_separator``) gets a list of class ids per clip.
    """
    for split, dataset in splits.items():
        _check_columns(dataset, split, spec)
    dropped = {name.lower() for name in spec.drop_labels}
    aliases = {k.lower(): v for k, v in spec.label_aliases.items()}
    if _has_label_sets(splits, spec):
        return _attach_label_sets(splits, spec, dropped, aliases)
    if spec.class_names:  # before reading names: a wrong version's ids can be out of its ClassLabel's range
        _check_label_set(splits, spec, list(spec.class_names), aliases)
    named = {split: _raw_label_names(dataset, split, spec) for split, dataset in splits.items()}
    if spec.class_names:
        classes = list(spec.class_names)
    elif spec.label_names_column and not isinstance(
        next(iter(splits.values())).features[spec.label_column], ClassLabel
    ):
        classes = _id_ordered_names(splits, spec)
    else:
        first = next(iter(named.values()))
        classes = sorted({n for n in first if n.lower() not in dropped}, key=natural_sort_key)
    ids = {name: i for i, name in enumerate(classes)}
    result = {}
    for split, dataset in splits.items():
        keep, labels = [], []
        for index, raw in enumerate(named[split]):
            if raw.lower() in dropped:
                continue
            name = aliases.get(raw.lower(), raw)
            if name not in ids:
                raise ValueError(
                    f"Split {split!r}, {describe_row(dataset, index, spec.audio_column)}: label {raw!r} is not "
                    f"one of the {len(classes)} classes {classes[:10]}{'...' if len(classes) > 10 else ''}. "
                    "Fix the label, list it in drop_labels / label_aliases, or pass the full class list."
                )
            keep.append(index)
            labels.append(ids[name])
        if len(keep) < len(dataset):
            logger.info(
                f"{split}: dropped {len(dataset) - len(keep)} rows labelled {sorted(spec.drop_labels)}"
            )
            dataset = dataset.select(keep)
        if "labels" in dataset.column_names:
            dataset = dataset.remove_columns("labels")
        dataset = dataset.add_column("labels", labels).cast_column("labels", ClassLabel(names=classes))
        result[split] = dataset
    return result, classes


def keep_saved_class_order(fold: Fold, checkpoint: str | None) -> Fold:
    """``fold`` with the class ids of the model saved in ``checkpoint`` (a run that resumes from it), whose
    classifier rows are in that order: a run started when names sorted otherwise (as text: 1, 10, 2) goes on
    with its own ids. The same class names are required."""
    if checkpoint is None or not os.path.isfile(os.path.join(checkpoint, "config.json")):
        return fold
    with open(os.path.join(checkpoint, "config.json"), encoding="utf-8") as f:
        saved = {int(i): name for i, name in (json.load(f).get("id2label") or {}).items()}
    saved_names = [saved[i] for i in sorted(saved)]
    names = [fold.id2label[i] for i in sorted(fold.id2label)]
    if saved_names == names:
        return fold
    if sorted(saved_names) != sorted(names):
        raise ValueError(
            f"{checkpoint} was saved with the classes {saved_names[:10]}, the data has {names[:10]}: resuming "
            "would train other classes on its classifier. Resume with the data it was started with, or start "
            "over with --overwrite_output_dir true."
        )
    new_id = {i: saved_names.index(name) for i, name in enumerate(names)}

    def reorder(dataset: Dataset | None) -> Dataset | None:
        if dataset is None:
            return None
        if is_multi_label(dataset):
            ids = [sorted(new_id[i] for i in row) for row in dataset["labels"]]
            feature = List(ClassLabel(names=saved_names))
        else:
            ids, feature = [new_id[i] for i in dataset["labels"]], ClassLabel(names=saved_names)
        return dataset.remove_columns("labels").add_column("labels", ids).cast_column("labels", feature)

    logger.info(f"{fold.name}: class ids kept as saved in {checkpoint}")
    return replace(
        fold,
        train=reorder(fold.train),
        test=reorder(fold.test),
        validation=reorder(fold.validation),
        id2label=dict(enumerate(saved_names)),
    )


def check_splits_present(data, names: list[str], spec: DatasetSpec) -> None:
    """Every split the protocol names is in the loaded (or streamed) dataset."""
    missing = [s for s in names if s not in data]
    if missing:
        raise ValueError(
            f"{spec.path} has no split(s) {missing} (it has {list(data)}); pass the split names "
            "(--train_split, --validation_split, --test_split)."
        )


def make_folds(
    data: DatasetDict | dict[str, Dataset],
    spec: DatasetSpec,
    cv_folds: int | None = None,
    skip_corrupt: bool = False,
    check_clips: bool = True,
    prepare_split: Callable[[Dataset], Dataset] | None = None,
    measure_splits: Callable[[dict[str, Dataset]], None] | None = None,
    num_proc: int | None = None,
) -> tuple[list[Fold], list[dict]]:
    """Split a loaded dataset into the protocol's folds; returns the folds and the clips skipped.

    ``cv_folds`` runs only the first n folds. Every clip is decoded and checked once (``check_clips``, see
    ``decode_and_check``: each split then carries its ``waveform``), and every split and fold must hold
    data of at least two classes, so that bad data stops the run before any training, not in fold 3.
    ``prepare_split`` maps each whole split before it is cut into folds (e.g. to cache its features once, not
    once per fold). ``measure_splits`` sees every checked split first (e.g. to fit the input length to the
    clips, which ``prepare_split``'s features then use). ``num_proc`` decodes and checks in that many
    processes (the same splits and errors).
    """
    if spec.fold_splits:
        names = list(spec.fold_splits)
    else:
        names = [s for s in (spec.train_split, spec.validation_split, spec.test_split) if s]
    check_splits_present(data, names, spec)
    if not spec.fold_splits and not spec.fold_column and not spec.test_split:
        raise ValueError(
            f"{spec.path}: no test data. Pass --fold_column (k-fold CV), --fold_splits (leave one split out) or "
            "--test_split."
        )
    for split in names:
        if len(data[split]) == 0:
            raise ValueError(f"split {split!r} of {spec.path} is empty; add its clips or choose other splits")
    splits, classes = attach_labels({s: data[s] for s in names}, spec)
    if len(classes) < 2:
        raise ValueError(
            f"{spec.path} has {len(classes)} class(es) {classes}: classification needs at least 2. Check "
            f"--label_column ({spec.label_column!r}) and the labels in the data."
        )
    skipped = []
    if check_clips:  # every split decoded first, so that one error names every unusable clip
        for split in names:
            splits[split], unusable = find_unusable_clips(
                splits[split], split, spec.audio_column, num_proc=num_proc
            )
            skipped += unusable
        splits = resolve_unusable_clips(splits, skipped, skip_corrupt)
        for split in names:
            if len(splits[split]) == 0:
                raise ValueError(
                    f"every clip of split {split!r} was skipped as unusable; nothing is left to train or test "
                    "on. Fix the files listed above."
                )
    if measure_splits is not None:
        measure_splits(splits)
    if prepare_split is not None:
        splits = {split: prepare_split(dataset) for split, dataset in splits.items()}
    id2label = dict(enumerate(classes))

    if spec.fold_splits:
        folds = [
            Fold(
                name=test,
                train=concatenate_datasets([splits[s] for s in names if s != test]),
                test=splits[test],
                validation=None,
                id2label=id2label,
            )
            for test in names
        ]
    elif spec.fold_column:
        dataset = splits[spec.train_split]
        fold_of = np.asarray(dataset[spec.fold_column])
        folds = [
            Fold(
                name=f"{spec.fold_column}{value}",
                train=dataset.select(np.flatnonzero(fold_of != value)),
                test=dataset.select(np.flatnonzero(fold_of == value)),
                validation=None,
                id2label=id2label,
            )
            for value in np.unique(fold_of)
        ]
    else:
        folds = [
            Fold(
                name=spec.test_split,
                train=splits[spec.train_split],
                test=splits[spec.test_split],
                validation=splits.get(spec.validation_split),
                id2label=id2label,
            )
        ]
    if cv_folds is not None:
        if not 1 <= cv_folds <= len(folds):
            raise ValueError(f"cv_folds={cv_folds}, but the protocol of {spec.path} has {len(folds)} fold(s)")
        folds = folds[:cv_folds]
    for fold in folds:
        for part in ("train", "test"):
            if len(getattr(fold, part)) == 0:
                raise ValueError(f"fold {fold.name!r} has no {part} clips; check the fold / split columns")
    return folds, skipped
