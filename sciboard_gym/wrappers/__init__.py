"""Gymnasium wrappers for SciBoard envs: plan actions, screen scaling and trajectory recording."""

from sciboard_gym.wrappers.plan import Executor, PlanActions
from sciboard_gym.wrappers.record import RecordTrajectory
from sciboard_gym.wrappers.scale import ScaleScreen

__all__ = ["Executor", "PlanActions", "RecordTrajectory", "ScaleScreen"]
