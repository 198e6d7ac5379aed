"""Losses: ADD (the paper's), and the baselines it is compared with (Focal, OPL)."""

from hf_add.losses.add import ADDLoss, add_statistics
from hf_add.losses.focal import FocalLoss
from hf_add.losses.opl import OrthogonalProjectionLoss

__all__ = ["ADDLoss", "FocalLoss", "OrthogonalProjectionLoss", "add_statistics"]
