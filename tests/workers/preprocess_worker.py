"""`hf_add.runs.run` with `hf-add train`'s flags, recording what each process did (`-m tests.workers.preprocess_worker
OUTPUT_DIR FLAGS...`, under torchrun or alone).

Each process (rank from $RANK, 0 when alone) writes to OUTPUT_DIR:
- decoded_rank{R}.txt: one line per clip it decoded (its file), from datasets' worker processes too;
- features_rank{R}.txt: one line per batch of fbank features it computed (the number of clips);
- data_rank{R}.json: a digest of the training split it was given (features and labels) and its cache files;
- grads_rank{R}.pt: the gradients of the first training step (after DDP's all-reduce), and the global batch's
  labels. Training batches are taken in order, so the global batch of a step is the same for any world size.
"""

import hashlib
import json
import os
import sys
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import SequentialSampler

from hf_add.commands.train import parse_config
from hf_add.data import audio
from hf_add.data.fbank import BatchedFbank
from hf_add.runs import run
from hf_add.trainer import ADDTrainer

RANK = int(os.environ.get("RANK", "0"))


def _append(path: Path, line: str) -> None:
    with open(path, "a") as f:  # appends from several processes: one short write each
        f.write(line + "\n")


def record_work(output: Path) -> None:
    """Count the decoding and feature work of this process (and of the datasets workers it forks)."""
    decode, features = audio.decode_clip, BatchedFbank.__call__

    def counting_decode(decoder, value, *args, **kwargs):
        _append(output / f"decoded_rank{RANK}.txt", os.path.basename(value.get("path") or "bytes"))
        return decode(decoder, value, *args, **kwargs)

    def counting_features(self, waves, *args, **kwargs):
        _append(output / f"features_rank{RANK}.txt", str(len(waves)))
        return features(self, waves, *args, **kwargs)

    audio.decode_clip, BatchedFbank.__call__ = counting_decode, counting_features


def recording_trainer(output: Path):
    class RecordingTrainer(ADDTrainer):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            data = self.train_dataset
            digest = hashlib.sha1(np.asarray(data["input_values"]).tobytes())
            digest.update(np.asarray(data["labels"]).tobytes())
            files = sorted(os.path.basename(f["filename"]) for f in data.cache_files)
            record = {"rows": len(data), "digest": digest.hexdigest(), "cache_files": files}
            (output / f"data_rank{RANK}.json").write_text(json.dumps(record))

        def _get_train_sampler(self, train_dataset=None):
            return SequentialSampler(self.train_dataset)

        def training_step(self, model, inputs, num_items_in_batch=None):
            loss = super().training_step(model, inputs, num_items_in_batch)
            path = output / f"grads_rank{RANK}.pt"
            if not path.exists():
                labels = inputs["labels"]
                if dist.is_initialized():
                    gathered = [torch.zeros_like(labels) for _ in range(dist.get_world_size())]
                    dist.all_gather(gathered, labels)
                    labels = torch.cat(gathered)
                grads = {
                    n: p.grad.detach().clone() for n, p in self.model.named_parameters() if p.grad is not None
                }
                torch.save({"grads": grads, "labels": labels}, path)
            return loss

    return RecordingTrainer


def main() -> None:
    output = Path(sys.argv[1])
    record_work(output)
    run(parse_config(sys.argv[2:]), trainer_class=recording_trainer(output))
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()  # a rank that exits with the group alive aborts in gloo's destructor


if __name__ == "__main__":
    main()
