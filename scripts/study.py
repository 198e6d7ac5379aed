"""The offline ADD study (hf_add.study): same as `hf-add study`. See `python scripts/study.py --help`."""

import sys

from hf_add.study import main

if __name__ == "__main__":
    main(sys.argv[1:])
