"""Gymnasium wrappers for SciBoard envs: screen scaling and trajectory recording."""

from sciboard_gym.wrappers.record import RecordTrajectory
from sciboard_gym.wrappers.scale import ScaleScreen

__all__ = ["RecordTrajectory", "ScaleScreen"]
