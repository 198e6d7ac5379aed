"""The global batch across processes, for pair losses under DDP (torchrun / accelerate launch).

ADD is a statistic of all pairs in the batch, so under DDP each rank must see every rank's embeddings.
We gather without gradient and put the local slice back with its gradient: each rank's loss then has the
global-batch value, but only its own rows carry gradient. DDP averages gradients over the W ranks, so
the loss is multiplied by W to make the result the exact gradient of the global-batch loss (what one
process on the concatenated batch computes). Unequal per-rank batch sizes (the last batch of an epoch)
are handled by gathering the sizes first and padding.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


@dataclass
class GlobalBatch:
    embeddings: torch.Tensor
    labels: torch.Tensor
    world_size: int
    local_size: int
    global_size: int

    @property
    def mean_weight(self) -> float:
        """This rank's weight of a per-rank mean such that the average over ranks is the global-batch mean
        (1 for equal per-rank batches)."""
        return self.world_size * self.local_size / self.global_size

    def ddp_gradient_loss(self, classification: torch.Tensor, embedding: torch.Tensor | None) -> torch.Tensor:
        """The per-rank loss whose DDP-averaged gradient is the gradient of the global-batch loss.

        Each rank's classification loss is a mean over its own rows, weighted by its share of the global
        batch (exact for unequal per-rank sizes); the embedding loss, computed over the global batch with
        gradient only through the local rows, is multiplied by the world size.
        """
        loss = classification * self.mean_weight
        return loss if embedding is None else loss + embedding * self.world_size


def local_batch(embeddings: torch.Tensor, labels: torch.Tensor) -> GlobalBatch:
    """This process's batch alone (one process, or a loss computed per rank)."""
    return GlobalBatch(embeddings, labels, 1, embeddings.shape[0], embeddings.shape[0])


def gather_global_batch(embeddings: torch.Tensor, labels: torch.Tensor) -> GlobalBatch:
    """All ranks' embeddings and labels, concatenated in rank order; only the local rows keep gradient.

    Every rank must call this at the same point (it is a collective), whatever its batch holds.
    """
    size = world_size()
    local = embeddings.shape[0]
    if size == 1:
        return local_batch(embeddings, labels)
    sizes = torch.tensor([local], device=embeddings.device)
    all_sizes = [torch.zeros_like(sizes) for _ in range(size)]
    dist.all_gather(all_sizes, sizes)
    counts = torch.cat(all_sizes).tolist()
    padded = max(counts)
    gathered_embeddings = _gather_padded(embeddings.detach(), padded, size)
    gathered_labels = _gather_padded(labels, padded, size)
    rank = dist.get_rank()
    gathered_embeddings[rank] = embeddings
    return GlobalBatch(
        embeddings=torch.cat([part[:n] for part, n in zip(gathered_embeddings, counts, strict=True)]),
        labels=torch.cat([part[:n] for part, n in zip(gathered_labels, counts, strict=True)]),
        world_size=size,
        local_size=local,
        global_size=sum(counts),
    )


def _gather_padded(tensor: torch.Tensor, padded: int, size: int) -> list[torch.Tensor]:
    pad = torch.zeros((padded - tensor.shape[0], *tensor.shape[1:]), dtype=tensor.dtype, device=tensor.device)
    local = torch.cat([tensor, pad]).contiguous()
    parts = [torch.empty_like(local) for _ in range(size)]
    dist.all_gather(parts, local)
    return parts
