"""Fine-tune AST / BEATs with ADDTrainer over a dataset's folds; see hf_add/finetune.py (`hf-add train`)."""

from hf_add.finetune import main

if __name__ == "__main__":
    main()
