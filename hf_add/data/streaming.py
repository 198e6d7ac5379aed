"""Training on a stream: decode, check and label clips in the DataLoader workers, nothing cached on disk.

    from datasets import load_dataset
    from hf_add.data.streaming import StreamingClips

    data = load_dataset("parquet", data_dir="shards/", streaming=True)
    train = StreamingClips(data["train"], class_names=["dog", "rain"], repeat=True, shuffle_buffer=1000)
    args = TrainingArguments(max_steps=2000, dataloader_num_workers=2, remove_unused_columns=False)
    trainer = ADDTrainer(..., train_dataset=train, args=args)  # under torchrun: each process its own part

Each worker reads raw rows (paths or bytes: cheap), decodes and checks its own share, and yields
``{"waveform", "labels"}`` rows; the collator computes features in the same worker. The readers are every
loader worker of every process (``rank`` of ``world_size``): when the shards divide among the readers each
reads whole shards, so a process never reads another's clips (the rule of ``split_dataset_by_node``); else
each reads every row and keeps every R-th (decoding only its own).

Epochs. A stream has no length, so a run is ``max_steps`` long. With ``repeat=True`` (training) each worker
goes over its share again and again, pass p in its own order (the shard order and a buffer of
``shuffle_buffer`` rows, drawn from the seed and p); workers with more data than others are then a little
behind in passes.

Resuming. ``state_dict`` is where the worker stands: its pass and the raw rows read in it. ADDTrainer saves
it in each checkpoint (through torchdata's ``StatefulDataLoader``), and a resumed run replays the pass's raw
rows up to that point without decoding them: no clip is repeated or skipped. (datasets' own
``IterableDataset.state_dict`` does not keep a shuffle buffer, so it would skip the clips in it.)

Bad clips. The first clip that cannot be used stops the run with a ``ValueError`` naming it, or with
``skip_corrupt`` it is left out and written to ``skipped_dir`` (one JSON line per clip and worker), which
``read_skipped_clips`` collects once the run ends.
"""

from __future__ import annotations

import glob
import json
import logging
import os
import warnings
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from datasets import Audio, ClassLabel, IterableDataset, List

from hf_add.data.audio import MIN_SAMPLES, WAVEFORM_COLUMN, clip_decoder, decode_clip

logger = logging.getLogger(__name__)

# torchdata's StatefulDataLoader calls a torch function that torch has deprecated, once per iterator.
warnings.filterwarnings("ignore", message="'set_vital' is deprecated", category=UserWarning)

READ_BATCH = 64  # raw rows read at a time (paths or encoded bytes)
SKIPPED_PATTERN = "skipped-*.jsonl"


class StreamingLabels:
    """A raw row's class id (or list of ids, multi-label), or None for a row outside the protocol.

    ``class_names`` fixes the classes; without it they are the names of a ``ClassLabel`` label column (a
    stream cannot be read ahead to find them). Integer labels are names through that ClassLabel, or through
    ``label_names_column``; ``label_aliases`` / ``drop_labels`` are applied as in ``attach_labels``."""

    def __init__(
        self,
        features,
        label_column: str = "label",
        class_names: Sequence[str] = (),
        label_names_column: str | None = None,
        label_separator: str | None = None,
        label_aliases: dict[str, str] | None = None,
        drop_labels: Sequence[str] = (),
    ):
        for column in (label_column, label_names_column):
            if features is not None and column is not None and column not in features:
                raise ValueError(
                    f"the stream has no column {column!r}; its columns are {list(features)}. Pass the right "
                    "--label_column (or --label_names_column)."
                )
        feature = features.get(label_column) if features is not None else None
        inner = feature.feature if isinstance(feature, List) else feature
        self.class_label = inner if isinstance(inner, ClassLabel) else None
        if not class_names and self.class_label is None:
            raise ValueError(
                f"A stream is read once, so its classes must be known before it starts: the label column "
                f"{label_column!r} is not a ClassLabel ({feature}). Pass the class names "
                "(--class_names dog rain ...; in Python class_names=[...]) or a preset."
            )
        self.classes = list(class_names or self.class_label.names)
        self.ids = {name: i for i, name in enumerate(self.classes)}
        self.label_column, self.label_names_column = label_column, label_names_column
        self.separator = label_separator
        self.multi_label = label_separator is not None or isinstance(feature, List)
        self.aliases = {k.lower(): v for k, v in (label_aliases or {}).items()}
        self.dropped = {name.lower() for name in drop_labels}

    def _name(self, value) -> str:
        if self.class_label is not None and isinstance(value, (int, np.integer)):
            return self.class_label.int2str(int(value))
        return str(value)

    def _id(self, raw: str, where: str) -> int:
        name = self.aliases.get(raw.lower(), raw)
        if name not in self.ids:
            shown = self.classes[:10] + (["..."] if len(self.classes) > 10 else [])
            raise ValueError(
                f"{where}: label {raw!r} is not one of the {len(self.classes)} classes {shown}. Fix the label, or "
                "pass the full class list (--class_names)."
            )
        return self.ids[name]

    def __call__(self, row: dict, where: str):
        if self.multi_label:
            value = row[self.label_column]
            names = (
                [self._name(v) for v in value]
                if isinstance(value, (list, tuple))
                else [n.strip() for n in str(value or "").split(self.separator) if n.strip()]
            )
            return sorted({self._id(n, where) for n in names if n.lower() not in self.dropped})
        value = row[self.label_names_column] if self.label_names_column else row[self.label_column]
        if value is None or not str(value).strip():
            raise ValueError(f"{where}: the label is empty. Give every clip a label, or remove the clip.")
        raw = self._name(value)
        return None if raw.lower() in self.dropped else self._id(raw, where)


class StreamingClips(torch.utils.data.IterableDataset):
    """Decoded, checked and labelled clips of a streaming ``datasets.IterableDataset`` (see the module).

    ``source``: the whole stream; process ``rank`` of ``world_size`` reads its part of it (see the module).
    ``labels``: a ``StreamingLabels``, else one is built from ``class_names`` / the ClassLabel of
    ``label_column``.
    """

    def __init__(
        self,
        source: IterableDataset,
        labels: StreamingLabels | None = None,
        *,
        class_names: Sequence[str] = (),
        label_column: str = "label",
        audio_column: str = "audio",
        split: str = "train",
        repeat: bool = False,
        shuffle_buffer: int = 0,
        seed: int = 0,
        skip_corrupt: bool = False,
        skipped_dir: str | None = None,
        rank: int = 0,
        world_size: int = 1,
        min_samples: int = MIN_SAMPLES,
    ):
        if audio_column not in (source.column_names or [audio_column]):
            raise ValueError(
                f"the {split} stream has no audio column {audio_column!r}; its columns are {source.column_names}. "
                "Pass the right --audio_column."
            )
        self.labels = labels or StreamingLabels(source.features, label_column, class_names)
        self.source = source.cast_column(audio_column, Audio(decode=False))
        self.audio_column, self.split = audio_column, split
        self.repeat, self.shuffle_buffer, self.seed = repeat, shuffle_buffer, seed
        self.skip_corrupt, self.skipped_dir = skip_corrupt, skipped_dir
        self.rank, self.world_size = rank, world_size
        self.min_samples = min_samples
        self._position = {"pass": 0, "rows": 0}
        self._resume: dict | None = None

    @property
    def classes(self) -> list[str]:
        return self.labels.classes

    @property
    def multi_label(self) -> bool:
        return self.labels.multi_label

    # ---- the position, for a resumable DataLoader (torchdata's StatefulDataLoader calls these in the worker)

    def state_dict(self) -> dict:
        return dict(self._position)

    def load_state_dict(self, state: dict) -> None:
        self._resume = dict(state)

    # ---- reading

    def _worker(self) -> tuple[int, int]:
        info = torch.utils.data.get_worker_info()
        return (info.id, info.num_workers) if info is not None else (0, 1)

    def _raw_rows(self, data_pass: int, worker: int, workers: int) -> Iterator[dict]:
        """This worker's raw rows of pass ``data_pass``, in the pass's order.

        The readers are every worker of every process: reader ``rank * workers + worker`` of
        ``world_size * workers``. When the shards divide among the readers, each reads whole shards (the shard
        order drawn anew each pass, the same in every reader); else each reads every row and keeps its own,
        every R-th. Then a buffer of ``shuffle_buffer`` rows shuffles them (datasets' own shuffle waits 5 s
        when a Parquet pass ends, so it is not used)."""
        readers, reader = self.world_size * workers, self.rank * workers + worker
        generator = np.random.default_rng([self.seed, data_pass])
        shards = self.source.num_shards
        order = generator.permutation(shards) if self.shuffle_buffer > 0 else np.arange(shards)
        whole_shards = shards % readers == 0  # else some readers would go round fewer shards more often
        mine = order[reader::readers] if whole_shards else order
        rows = (row for shard in mine for row in self._shard_rows(int(shard), shards))
        if not whole_shards:
            rows = (row for index, row in enumerate(rows) if index % readers == reader)
        yield from shuffled(rows, self.shuffle_buffer, generator) if self.shuffle_buffer > 0 else rows

    def _shard_rows(self, shard: int, shards: int) -> Iterator[dict]:
        stream = self.source.shard(num_shards=shards, index=shard) if shards > 1 else self.source
        for batch in stream.iter(batch_size=READ_BATCH):
            columns = list(batch)
            for values in zip(*batch.values(), strict=True):
                yield dict(zip(columns, values, strict=True))

    def __iter__(self) -> Iterator[dict]:
        worker, workers = self._worker()
        start = self._resume or {"pass": 0, "rows": 0}
        self._resume = None
        data_pass, skip = start["pass"], start["rows"]
        decoder = clip_decoder()
        while True:
            self._position = {"pass": data_pass, "rows": 0}
            yielded = False
            for rows, row in enumerate(self._raw_rows(data_pass, worker, workers), start=1):
                self._position["rows"] = rows
                if rows <= skip:
                    continue  # read again, not decoded: it was trained on before the checkpoint
                clip = self._clip(decoder, row)
                if clip is not None:
                    yielded = True
                    yield clip
            if not self.repeat or (not yielded and skip == 0):  # a worker with no clips stops
                return
            data_pass, skip = data_pass + 1, 0

    def _clip(self, decoder: Audio, row: dict) -> dict | None:
        audio = row[self.audio_column]
        file = (audio or {}).get("path") or "in-memory bytes"
        label = self.labels(row, f"{self.split} clip {file}")
        if label is None:
            return None
        samples, problem = decode_clip(decoder, audio, self.min_samples)
        if problem:
            self._skip(file, problem)
            return None
        return {WAVEFORM_COLUMN: samples, "labels": label}

    def _skip(self, file: str, problem: str) -> None:
        if not self.skip_corrupt:
            raise ValueError(
                f"{self.split} clip {file}: {problem}. Replace or remove the file, or pass --skip_corrupt true to "
                "skip (and list) such clips; a stopped run goes on from its last checkpoint with --skip_corrupt true "
                "--resume_from_checkpoint true."
            )
        logger.warning(f"Skipping {self.split} clip {file}: {problem}")
        if self.skipped_dir is not None:
            os.makedirs(self.skipped_dir, exist_ok=True)
            worker = self._worker()[0]
            name = f"skipped-{self.split}-rank{self.rank}-worker{worker}.jsonl"
            with open(os.path.join(self.skipped_dir, name), "a") as f:
                f.write(json.dumps({"split": self.split, "file": file, "problem": problem}) + "\n")


def shuffled(rows: Iterator[dict], size: int, generator: np.random.Generator) -> Iterator[dict]:
    """``rows`` in a random order drawn with a buffer of ``size``: each row read replaces a random one of the
    buffer, which is yielded; the same ``generator`` state gives the same order."""
    buffer: list[dict] = []
    for row in rows:
        if len(buffer) < size:
            buffer.append(row)
            continue
        index = int(generator.integers(size))
        yield buffer[index]
        buffer[index] = row
    generator.shuffle(buffer)
    yield from buffer


def skipped_clip_files(directory: str, rank: int | None = None) -> list[str]:
    """The files of skipped clips that every worker wrote, or the workers of process ``rank``."""
    pattern = SKIPPED_PATTERN if rank is None else f"skipped-*-rank{rank}-worker*.jsonl"
    return sorted(glob.glob(os.path.join(directory, pattern)))


def forget_skipped_clips(directory: str, rank: int) -> None:
    """Remove process ``rank``'s lists of skipped clips (a run that starts afresh in the directory)."""
    for path in skipped_clip_files(directory, rank):
        os.remove(path)


def read_skipped_clips(directory: str, rank: int | None = None) -> list[dict]:
    """The clips the streams skipped (written by every worker, or by process ``rank``'s), each once, in a
    stable order: a clip skipped again in a later pass, or before and after a resume, is listed once."""
    found = {}
    for path in skipped_clip_files(directory, rank):
        with open(path) as f:
            for line in f:
                if line.strip():
                    clip = json.loads(line)
                    found[(clip["split"], clip["file"])] = clip
    return [found[key] for key in sorted(found)]


# ---- ADDTrainer's training DataLoader over StreamingClips, and its position in checkpoints


def stream_position_file(process_index: int) -> str:
    return f"stream_position-rank{process_index}.pt"


def take_process_part(clips: StreamingClips, process_index: int, world_size: int) -> None:
    """Make ``clips`` the part of process ``process_index`` of ``world_size`` (the trainer's), so that under
    torchrun each process reads its own clips, not all of them; a different split given by hand is an error."""
    if (clips.rank, clips.world_size) == (process_index, world_size):
        return
    if clips.world_size != 1:
        raise ValueError(
            f"StreamingClips(rank={clips.rank}, world_size={clips.world_size}), but the trainer is process "
            f"{process_index} of {world_size}: leave rank and world_size out (ADDTrainer sets them), or give its own"
        )
    clips.rank, clips.world_size = process_index, world_size


def streaming_train_dataloader(trainer, position: dict | None = None):
    """The training DataLoader of a ``StreamingClips`` dataset: a torchdata ``StatefulDataLoader`` (through
    accelerate, which puts batches on the device), resumed at ``position`` if given.

    The dataset is made this process's part, so accelerate is told it is the only process: left to itself it
    would either read every batch on process 0 and send it out (``dispatch_batches``) or have every process
    decode the whole stream and keep its slice."""
    from accelerate.data_loader import prepare_data_loader

    args = trainer.args
    take_process_part(trainer.train_dataset, args.process_index, args.world_size)
    loader = torch.utils.data.DataLoader(
        trainer.train_dataset,
        batch_size=trainer._train_batch_size,
        collate_fn=trainer.data_collator,
        num_workers=args.dataloader_num_workers,
        pin_memory=args.dataloader_pin_memory and torch.accelerator.is_available(),
        persistent_workers=args.dataloader_persistent_workers,
        multiprocessing_context=args.dataloader_multiprocessing_context,
        prefetch_factor=args.dataloader_prefetch_factor,
    )
    loader = prepare_data_loader(
        loader,
        device=args.device,
        num_processes=1,
        process_index=0,
        put_on_device=True,
        dispatch_batches=False,
        non_blocking=args.accelerator_config.non_blocking,
        use_stateful_dataloader=True,
    )
    if position is not None:
        loader.load_state_dict(position)
    return loader


def save_stream_position(loader, checkpoint_dir: str, process_index: int) -> None:
    os.makedirs(checkpoint_dir, exist_ok=True)
    torch.save(loader.state_dict(), os.path.join(checkpoint_dir, stream_position_file(process_index)))


def load_stream_position(checkpoint_dir: str, process_index: int) -> dict:
    path = os.path.join(checkpoint_dir, stream_position_file(process_index))
    if not os.path.isfile(path):
        raise ValueError(
            f"{checkpoint_dir} has no stream position ({stream_position_file(process_index)}): it was not saved by "
            "a streaming run of this many processes, so resuming could repeat or skip clips. Resume it the way "
            "it was trained, or start afresh (--overwrite_output_dir)."
        )
    return torch.load(path, weights_only=True)


# ---- the protocol's splits as streams (hf-add train --streaming true)


def stream_fold(
    spec,
    *,
    seed: int,
    shuffle_buffer: int,
    skip_corrupt: bool,
    skipped_dir: str,
    rank: int = 0,
    world_size: int = 1,
    max_train_samples: int | None = None,
    max_eval_samples: int | None = None,
):
    """The fixed train / (validation) / test splits of ``spec`` as one fold of ``StreamingClips``.

    Training is this process's part of the stream, read pass after pass; a Parquet stream is first cut into row
    groups (``reshard``) so that processes and workers get shards of their own. Evaluation streams are read
    whole, once, by the process that evaluates."""
    from datasets import load_dataset

    from hf_add.data.presets import SPEECH_COMMANDS_ARCHIVE, Fold, check_splits_present

    if spec.path == SPEECH_COMMANDS_ARCHIVE:
        raise ValueError(
            "--streaming true reads what datasets streams (Hub repositories, Parquet, WebDataset, audiofolder); the "
            "extracted Speech Commands archive is split by its lists: leave --streaming out"
        )
    if not spec.test_split:
        raise ValueError(
            f"{spec.path}: no test data. Pass --test_split (a stream has fixed splits, no folds)."
        )
    data = load_dataset(
        spec.path, spec.config_name, revision=spec.revision, data_dir=spec.data_dir, streaming=True
    )
    check_splits_present(
        data, [s for s in (spec.train_split, spec.validation_split, spec.test_split) if s], spec
    )
    labels = StreamingLabels(
        data[spec.train_split].features,
        spec.label_column,
        spec.class_names,
        spec.label_names_column,
        spec.label_separator,
        spec.label_aliases,
        spec.drop_labels,
    )

    def clips(split: str, training: bool) -> StreamingClips:
        source, limit = data[split], max_train_samples if training else max_eval_samples
        if training:
            source = source.reshard()
        if limit is not None:
            source = source.take(limit)
        return StreamingClips(
            source,
            labels,
            audio_column=spec.audio_column,
            split=split,
            repeat=training,
            shuffle_buffer=shuffle_buffer if training else 0,
            seed=seed,
            skip_corrupt=skip_corrupt,
            skipped_dir=skipped_dir,
            rank=rank,
            world_size=world_size if training else 1,
        )

    return Fold(
        name=spec.test_split,
        train=clips(spec.train_split, True),
        test=clips(spec.test_split, False),
        validation=clips(spec.validation_split, False) if spec.validation_split else None,
        id2label=dict(enumerate(labels.classes)),
    )
