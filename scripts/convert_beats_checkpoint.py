"""Convert an official BEATs checkpoint (.pt) into a Hugging Face `save_pretrained` directory.

    python scripts/convert_beats_checkpoint.py BEATs_iter3_plus_AS2M.pt beats-iter3-as2m [--push_to_hub REPO]

Same program as `hf-add convert-beats`.
"""

import sys

from hf_add.cli import convert_beats_main

if __name__ == "__main__":
    convert_beats_main(sys.argv[1:])
