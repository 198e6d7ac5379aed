"""Run under torchrun with 2 CPU processes (`-m tests.workers.ddp_sampler_worker` from the repository root): ADDTrainer(samples_per_class=2) for 12 steps with a checkpoint at
step 7, then resumed from that checkpoint; each rank writes the rows and labels of every training batch it saw.

argv: OUTPUT_DIR. Writes OUTPUT_DIR/seen_rank{rank}.json: {"full": [...], "resumed": [...], "length": n}.
Also imported by test_samplers.py for the recording trainer and the indexed rows.
"""

import json
import sys
from pathlib import Path

import torch
from transformers import TrainingArguments

from hf_add import ADDLoss, ADDTrainer
from tests.tiny import ListDataset, TinyConfig, TinyForAudioClassification

# Unbalanced on purpose: 43 rows of 6 classes.
DDP_LABELS = [0] * 12 + [1] * 10 + [2] * 8 + [3] * 6 + [4] * 4 + [5] * 3


class RecordingTrainer(ADDTrainer):
    """Records the rows (their index, stored in input feature 0) and labels of every batch it computes."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.seen = {"train": [], "eval": []}

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        mode = "train" if model.training else "eval"
        rows = inputs["input_values"][:, 0].round().long().tolist()
        self.seen[mode].append({"rows": rows, "labels": inputs["labels"].tolist()})
        return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)


def indexed_rows(labels: list[int], dim: int = 8) -> ListDataset:
    """Rows whose input feature 0 is the row's index, so a batch tells which rows it holds."""
    values = torch.randn(len(labels), dim, generator=torch.Generator().manual_seed(0))
    values[:, 0] = torch.arange(len(labels))
    return ListDataset(
        [{"input_values": values[i], "labels": torch.tensor(label)} for i, label in enumerate(labels)]
    )


def tiny_classifier(num_labels: int) -> TinyForAudioClassification:
    torch.manual_seed(0)
    return TinyForAudioClassification(TinyConfig(num_labels=num_labels))


def run(output_dir: Path, resume: str | None = None) -> RecordingTrainer:
    args = TrainingArguments(
        output_dir=str(output_dir),
        per_device_train_batch_size=4,
        max_steps=12,
        learning_rate=0.1,
        optim="sgd",
        use_cpu=True,
        ddp_backend="gloo",
        report_to=[],
        save_strategy="steps",
        save_steps=7,
        logging_steps=1,
        disable_tqdm=True,
        seed=3,
    )
    trainer = RecordingTrainer(
        model=tiny_classifier(max(DDP_LABELS) + 1),
        args=args,
        train_dataset=indexed_rows(DDP_LABELS),
        embedding_loss=ADDLoss(),
        samples_per_class=2,
    )
    trainer.train(resume_from_checkpoint=resume)
    return trainer


def main() -> None:
    import torch.distributed as dist

    output = Path(sys.argv[1])
    full = run(output / "full")
    resumed = run(output / "resumed", resume=str(output / "full" / "checkpoint-7"))
    seen = {
        "full": full.seen["train"],
        "resumed": resumed.seen["train"],
        "length": len(full.get_train_dataloader()),
    }
    (output / f"seen_rank{dist.get_rank()}.json").write_text(json.dumps(seen))
    dist.barrier()
    dist.destroy_process_group()  # a rank that exits with the group alive aborts in gloo's destructor


if __name__ == "__main__":
    main()
