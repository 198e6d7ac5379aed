"""Run under torchrun with 2 CPU processes (`-m tests.workers.ddp_worker` from the repository root): one ADDTrainer
step on per-rank batches of given sizes.

argv: OUTPUT_FILE SIZES (e.g. "4,3": rank 0 gets rows 0-3, rank 1 rows 4-6). Rank 0 saves the parameters
after one step, for ADD over the global batch and for per-rank ADD, and the loss logged at that step.
"""

import sys

import torch
import torch.distributed as dist
from torch.utils.data import SequentialSampler
from transformers import TrainingArguments

from hf_add import ADDLoss, ADDTrainer
from tests.tiny import AST_FRAMES, AST_MELS, ListDataset, random_rows, tiny_ast


class SequentialADDTrainer(ADDTrainer):
    def _get_train_sampler(self, train_dataset=None):
        return SequentialSampler(self.train_dataset)


def one_step(sizes: list[int], gather_embeddings: bool) -> tuple[dict[str, torch.Tensor], float]:
    args = TrainingArguments(
        output_dir=f"/tmp/hf_add_ddp_{gather_embeddings}",
        per_device_train_batch_size=sizes[0],
        max_steps=1,
        learning_rate=0.1,
        optim="sgd",
        lr_scheduler_type="constant",
        weight_decay=0.0,
        max_grad_norm=0.0,
        use_cpu=True,
        ddp_backend="gloo",
        report_to=[],
        save_strategy="no",
        logging_steps=1,
        disable_tqdm=True,
        accelerator_config={"even_batches": False},
    )
    rows = random_rows(sum(sizes), (AST_FRAMES, AST_MELS))
    trainer = SequentialADDTrainer(
        model=tiny_ast(),
        args=args,
        train_dataset=ListDataset(rows),
        embedding_loss=ADDLoss(),
        gather_embeddings=gather_embeddings,
    )
    trainer.train()
    (logged_loss,) = [logs["loss"] for logs in trainer.state.log_history if "loss" in logs]
    return {name: p.detach().clone() for name, p in trainer.model.named_parameters()}, logged_loss


def main() -> None:
    output, sizes = sys.argv[1], [int(s) for s in sys.argv[2].split(",")]
    results = {mode: one_step(sizes, mode) for mode in (True, False)}
    if dist.get_rank() == 0:
        torch.save(
            {"global": results[True][0], "per_rank": results[False][0], "logged_loss": results[True][1]},
            output,
        )
    dist.barrier()
    dist.destroy_process_group()  # a rank that exits with the group alive aborts in gloo's destructor


if __name__ == "__main__":
    main()
