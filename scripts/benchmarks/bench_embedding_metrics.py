"""Time hf_add.embedding_metrics on an evaluation set of N clips (default N = 50,000, d = 768, 35 classes).

The embeddings are synthetic: class centres plus noise, so neighbours and clusters have structure, as trained
embeddings do (the cost does not depend on the values, only on N, d and the class sizes, which set the
depth of the per-row top-R). Run on an otherwise quiet machine and record the load beside the time:

    OMP_NUM_THREADS=2 python scripts/benchmarks/bench_embedding_metrics.py
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import torch

from hf_add.embedding_metrics import clustering_nmi, nearest_class_mean_accuracy, retrieval_metrics


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--num_samples", type=int, default=50_000)
    parser.add_argument("--dim", type=int, default=768)
    parser.add_argument("--num_classes", type=int, default=35)
    parser.add_argument("--block_size", type=int, default=1024)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--similarity_dtype", choices=["float32", "float64"], default="float32")
    args = parser.parse_args()

    generator = torch.Generator().manual_seed(0)
    labels = torch.randint(args.num_classes, (args.num_samples,), generator=generator)
    centres = torch.randn(args.num_classes, args.dim, generator=generator)
    embeddings = centres[labels] + 2.0 * torch.randn(args.num_samples, args.dim, generator=generator)

    print(
        f"N={args.num_samples} d={args.dim} classes={args.num_classes} block_size={args.block_size} k={args.k} "
        f"similarity_dtype={args.similarity_dtype} "
        f"torch {torch.__version__} threads={torch.get_num_threads()} "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')} {platform.processor() or platform.machine()}"
    )
    print(f"load average before: {os.getloadavg()}")
    timings = {}
    start = time.perf_counter()
    retrieval = retrieval_metrics(
        embeddings,
        labels,
        k=args.k,
        block_size=args.block_size,
        similarity_dtype=getattr(torch, args.similarity_dtype),
    )
    timings["retrieval_metrics"] = time.perf_counter() - start
    start = time.perf_counter()
    ncm = nearest_class_mean_accuracy(embeddings, labels)
    timings["nearest_class_mean_accuracy"] = time.perf_counter() - start
    start = time.perf_counter()
    nmi = clustering_nmi(embeddings, labels)
    timings["clustering_nmi"] = time.perf_counter() - start
    print(f"load average after: {os.getloadavg()}")

    metrics = {**retrieval, "nearest_class_mean_accuracy": ncm, "nmi": nmi}
    print(
        "metrics: "
        + ", ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items())
    )
    for name, seconds in timings.items():
        print(f"{name:>28}: {seconds:7.1f} s")
    print(f"{'total':>28}: {sum(timings.values()):7.1f} s")


if __name__ == "__main__":
    main()
