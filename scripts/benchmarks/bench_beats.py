"""Forward+backward time of the BEATs port: SDPA attention against the eager path, same weights and inputs,
in float32 and optionally under autocast (``--autocast bf16 fp16``; every step's output must be finite).

Prints a Markdown table. Defaults fit a 2-core CPU in well under 3 minutes: the BEATs_iter3 (base) architecture,
2 clips of 5 s, median of 5 timed steps per implementation.
"""

import argparse
import contextlib
import statistics
import time

import torch
from bench_machine import describe

from hf_add.models.beats import BeatsConfig, BeatsForAudioClassification

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def step_time(model, inputs, mask, device: torch.device, precision: str) -> float:
    model.zero_grad(set_to_none=True)
    autocast = (
        torch.autocast(device.type, dtype=DTYPES[precision])
        if precision in DTYPES
        else contextlib.nullcontext()
    )
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    with autocast:
        logits = model(inputs, attention_mask=mask).logits
    if not torch.isfinite(logits).all():
        raise RuntimeError(f"non-finite BEATs output under {precision}")
    logits.float().sum().backward()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=5.0, help="clip length; 100 fbank frames per second")
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--autocast", nargs="*", default=[], choices=sorted(DTYPES), help="also these")
    args = parser.parse_args()

    device = torch.device(args.device)
    torch.manual_seed(0)
    # Base-size architecture; layerdrop off so that both paths run every layer.
    config = BeatsConfig(encoder_layers=args.layers, encoder_layerdrop=0.0, num_labels=527)
    model = BeatsForAudioClassification(config).to(device).train()
    frames = int(args.seconds * 100) - 2  # Kaldi 25 ms / 10 ms framing of `seconds` of 16 kHz audio
    inputs = torch.randn(args.batch_size, frames, config.num_mel_bins, device=device)
    mask = torch.ones(args.batch_size, frames, dtype=torch.long, device=device)
    mask[-1, frames * 3 // 4 :] = 0  # one partly padded clip, so the key padding mask is exercised

    # Interleaved, after one warm-up step each, so that load from other processes hits both paths alike.
    times = {(impl, precision): [] for precision in ["fp32", *args.autocast] for impl in ("sdpa", "eager")}
    for repeat in range(args.repeats + 1):
        for (implementation, precision), samples in times.items():
            model.set_attn_implementation(implementation)
            seconds = step_time(model, inputs, mask, device, precision)
            if repeat:
                samples.append(seconds)
    results = {implementation: statistics.median(samples) for implementation, samples in times.items()}

    patches = model.beats.embeddings(inputs).shape[1]
    print(
        f"{describe(args.device)}\nBEATs fwd+bwd, {args.layers} layers x 768, batch {args.batch_size} x "
        f"{args.seconds:g} s ({patches} patches), {args.device}, median of {args.repeats}\n"
    )
    print("| attention | precision | median ms / step | vs eager float32 |")
    print("|---|---|---:|---:|")
    for (implementation, precision), seconds in results.items():
        speed = results["eager", "fp32"] / seconds
        print(f"| {implementation} | {precision} | {seconds * 1000:.0f} | {speed:.2f}x |")


if __name__ == "__main__":
    main()
