"""``hf-add make-dataset``: a spoken-commands audiofolder made offline with espeak-ng (``hf_add.spoken_commands``)."""

from __future__ import annotations

import argparse
import time

from hf_add import spoken_commands
from hf_add.data.presets import SPEECH_COMMANDS_WORDS

HELP = "speak a word list with espeak-ng into a spoken-commands audiofolder (offline data)"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="hf-add make-dataset", description=spoken_commands.__doc__.split("\n\n")[0]
    )
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--words", nargs="+", default=SPEECH_COMMANDS_WORDS)
    parser.add_argument("--clips_per_word", type=int, default=20)
    parser.add_argument(
        "--num_voices",
        type=int,
        default=40,
        help="distinct speakers (accent + variant), at least 5: one per fold",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=None, help="parallel espeak-ng processes (CPU count)")
    parser.add_argument(
        "--noise_snr_db_range", nargs=2, type=float, default=(5.0, 30.0), help="'inf inf' for no noise"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace a non-empty output_dir")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    rows = spoken_commands.make_spoken_commands(
        args.output_dir,
        words=args.words,
        clips_per_word=args.clips_per_word,
        num_voices=args.num_voices,
        seed=args.seed,
        workers=args.workers,
        noise_snr_db_range=tuple(args.noise_snr_db_range),
        overwrite=args.overwrite,
    )
    seconds = time.perf_counter() - start
    print(
        f"wrote {len(rows)} clips to {args.output_dir} in {seconds:.1f} s ({len(rows) / seconds:.1f} clips/s)"
    )


if __name__ == "__main__":
    main()
