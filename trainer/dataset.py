"""Moved to :mod:`curator.pipeline.training_set` (the one training-set module, used by the
trainer and by export). This alias remains only for ``curator/ui/export_panel.py``, which
is being rewritten in the ui split; delete it once nothing imports ``trainer.dataset``."""

from curator.pipeline.training_set import POLICIES

__all__ = ["POLICIES"]
