"""Forward+backward time and saved memory of ADDLoss against the authors'-style code and a matmul floor.

The authors'-style version is the same paper formula written as in their public code (boolean-mask
indexing, ``torch.std``); the floor, ``(z @ z.T).sum()``, is the Gram matmul and its backward, which any
implementation must pay. The three run interleaved within each batch size so that load from other
processes hits them alike; medians are reported.

    python scripts/benchmarks/bench_loss.py [--device cuda] [--sizes 32 256 1024 2048] [--dim 768] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from bench_machine import describe

from hf_add.losses import ADDLoss


def authors_style_add(z: torch.Tensor, labels: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Paper eq. 1-5 with boolean-mask indexing and torch.std, all four λ = 1."""
    unit = z / torch.linalg.vector_norm(z, dim=1, keepdim=True).clamp_min(eps)
    distance = 1.0 - unit @ unit.T
    same = labels.unsqueeze(1) == labels.unsqueeze(0)
    off_diagonal = ~torch.eye(len(labels), dtype=torch.bool, device=z.device)
    positives = distance[same & off_diagonal].square()
    negatives = (1.0 - distance[~same]).square()
    return positives.mean() + positives.std() + negatives.mean() + negatives.std()


def floor(z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return (z @ z.T).sum()


def saved_bytes(fn, z, labels) -> int:
    """Bytes autograd keeps for backward, each storage counted once."""
    storages = {}

    def pack(tensor):
        storages[tensor.untyped_storage().data_ptr()] = tensor.untyped_storage().nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        fn(z, labels)
    return sum(storages.values())


def step_ms(fn, z, labels, sync) -> float:
    z.grad = None
    sync()
    start = time.perf_counter()
    fn(z, labels).backward()
    sync()
    return 1e3 * (time.perf_counter() - start)


def repeats_for(batch_size: int) -> int:
    """Many repeats where a step is dispatch-bound and noisy, few where it takes a large share of a second."""
    return 300 if batch_size <= 64 else 60 if batch_size <= 256 else 31 if batch_size <= 1024 else 21


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 256, 1024, 2048])
    parser.add_argument("--dim", type=int, default=768)
    parser.add_argument("--threads", type=int, help="CPU threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    add = ADDLoss(validate=False)  # the authors'-style code does not validate either
    # ...but the default checks input values, which is what users run: time it too
    candidates = {"add": add, "checked": ADDLoss(), "authors": authors_style_add, "floor": floor}

    print(describe(args.device))
    print(
        "| B | ADD ms | ADD() default ms | authors-style ms | floor ms | ADD/authors | ADD()/authors "
        "| ADD/floor | ADD saved | authors saved |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for batch_size in args.sizes:
        generator = torch.Generator().manual_seed(batch_size)
        z = torch.randn(batch_size, args.dim, generator=generator).to(device).requires_grad_()
        labels = torch.randint(0, 50, (batch_size,), generator=generator).to(device)
        with torch.no_grad():
            ours, theirs = add(z, labels), authors_style_add(z, labels)
        torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-6)

        times = {name: [] for name in candidates}
        for _ in range(2):  # warm-up
            for fn in candidates.values():
                step_ms(fn, z, labels, sync)
        for _ in range(repeats_for(batch_size)):
            for name, fn in candidates.items():
                times[name].append(step_ms(fn, z, labels, sync))
        ms = {name: statistics.median(values) for name, values in times.items()}
        matrix = batch_size * batch_size * 4
        saved = {name: saved_bytes(candidates[name], z, labels) / matrix for name in ("add", "authors")}
        print(
            f"| {batch_size} | {ms['add']:.2f} | {ms['checked']:.2f} | {ms['authors']:.2f} | {ms['floor']:.2f} "
            f"| {ms['add'] / ms['authors']:.2f} | {ms['checked'] / ms['authors']:.2f} | {ms['add'] / ms['floor']:.2f} "
            f"| {saved['add']:.2f} | {saved['authors']:.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
