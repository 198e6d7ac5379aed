"""The original Speech Commands archive as train / validation / test: the split of the paper (§4.1).

``speech_commands_v0.02.tar.gz`` extracts to one folder per word, ``validation_list.txt`` and
``testing_list.txt`` (paths such as ``right/bb05582b_nohash_3.wav``) and ``_background_noise_``. The clips
named in the two lists are the validation and test sets; every other word clip is training data: 84,843 /
9,981 / 11,005 clips for v0.02. The Hub copy (``google/speech_commands``) has no such test split: its
``test`` is the separate 12-class test archive, and its train split leaves the listed test clips out.
"""

from __future__ import annotations

import os

from datasets import Audio, ClassLabel, Dataset, DatasetDict, Features, Value

from hf_add.data.audio import SAMPLING_RATE

VALIDATION_LIST = "validation_list.txt"
TESTING_LIST = "testing_list.txt"


def is_speech_commands_archive(path: str | os.PathLike | None) -> bool:
    """A local folder holding ``testing_list.txt``: an extracted Speech Commands archive."""
    return path is not None and os.path.isfile(os.path.join(path, TESTING_LIST))


def _read_list(root: str, name: str) -> list[str]:
    path = os.path.join(root, name)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"{root} has no {name}: an extracted Speech Commands archive has {VALIDATION_LIST} and "
            f"{TESTING_LIST} beside its word folders. Extract the whole speech_commands_v0.02.tar.gz there."
        )
    with open(path, encoding="utf-8") as f:
        # dict: the file's order without repeats; paths always use "/" in the lists.
        return list(dict.fromkeys(line.strip().replace("\\", "/") for line in f if line.strip()))


def _word_clips(root: str) -> list[str]:
    """``word/clip.wav`` for every clip of every word folder (``_background_noise_`` is not a word)."""
    clips = []
    for word in sorted(os.listdir(root)):
        folder = os.path.join(root, word)
        if word.startswith(("_", ".")) or not os.path.isdir(folder):
            continue
        clips += [f"{word}/{name}" for name in sorted(os.listdir(folder)) if name.lower().endswith(".wav")]
    return clips


def split_clips(
    clips: list[str], validation: list[str], test: list[str], where: str = "the archive"
) -> dict[str, list[str]]:
    """The archive's split of its clip paths: the listed clips are validation and test, every other clip is
    train. Raises if the lists share a clip or name one that is not among ``clips`` (a partial extraction)."""
    shared = sorted(set(validation) & set(test))
    if shared:
        raise ValueError(
            f"{len(shared)} clip(s) of {where} are in both {VALIDATION_LIST} and {TESTING_LIST}, e.g. "
            f"{shared[:3]}; restore the archive's original list files."
        )
    present = set(clips)
    for name, listed in ((VALIDATION_LIST, validation), (TESTING_LIST, test)):
        missing = [path for path in listed if path not in present]
        if missing:
            raise FileNotFoundError(
                f"{len(missing)} clip(s) named in {name} are not in {where}, e.g. {missing[:3]}. The archive "
                "is incompletely extracted: extract speech_commands_v0.02.tar.gz again."
            )
    held_out = set(validation) | set(test)
    return {"train": [c for c in clips if c not in held_out], "validation": validation, "test": test}


def archive_split_files(root: str | os.PathLike) -> dict[str, list[str]]:
    """The relative clip paths (``word/clip.wav``) of each split of an extracted archive."""
    root = os.fspath(root)
    validation, test = _read_list(root, VALIDATION_LIST), _read_list(root, TESTING_LIST)
    return split_clips(_word_clips(root), validation, test, where=root)


def load_speech_commands_archive(root: str | os.PathLike) -> DatasetDict:
    """train / validation / test of an extracted archive: ``file`` (``word/clip.wav``), ``audio`` (16 kHz),
    ``label`` (ClassLabel of the word folders, sorted) and ``speaker_id``; audio is read when accessed."""
    root = os.fspath(root)
    files = archive_split_files(root)
    words = sorted({path.split("/")[0] for paths in files.values() for path in paths})
    features = Features(
        {
            "file": Value("string"),
            "audio": Audio(sampling_rate=SAMPLING_RATE),
            "label": ClassLabel(names=words),
            "speaker_id": Value("string"),
        }
    )
    return DatasetDict(
        {
            split: Dataset.from_dict(
                {
                    "file": paths,
                    "audio": [os.path.join(root, *path.split("/")) for path in paths],
                    "label": [path.split("/")[0] for path in paths],
                    # clip names are <speaker>_nohash_<repetition>.wav
                    "speaker_id": [path.split("/")[1].split("_nohash_")[0] for path in paths],
                },
                features=features,
            )
            for split, paths in files.items()
        }
    )
