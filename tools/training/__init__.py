"""The training engine behind pytorch_quick_evaluator and pytorch_full_trainer.

data (``datasets``, ``data``) -> model and optimizer (``runs``, ``components``) -> loop (``engine``)
-> metrics (``metrics``) -> callbacks (``callbacks``, ``checkpoints``, ``tracking``, ``plots``).
``lr_finder.lr_range_test`` and ``distributed`` (torchrun/DDP) complete it.
"""
