"""Research programs built on the library: the offline study, the paper's Table 2 cells, the pretrained
backbone, the offline demo and the soft-label probe.

They call ``hf_add.runs.run`` with typed configs. No module outside this package imports or names them: the
``hf-add`` command line finds ``study``, ``reproduce`` and ``pretrain`` through the ``hf_add.commands``
entry-point group of pyproject.toml; the demo runs as ``python -m hf_add.research.demo`` (``make demo``).
"""
