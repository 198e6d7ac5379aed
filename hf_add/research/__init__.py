"""Research programs built on the library: the offline study, the paper's Table 2 cells, the offline demo.

The library (losses, trainer, data, models, card, hub, evaluation) never imports this package; the
``hf-add`` command line offers these programs as ``study``, ``reproduce`` and ``make demo``.
"""
