"""One cell of the paper's Table 2 with Table 1's hyperparameters; see hf_add/table2.py."""

from hf_add.table2 import main

if __name__ == "__main__":
    main()
