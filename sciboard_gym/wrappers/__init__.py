"""Gymnasium wrappers for SciBoard envs: plan actions, SB3 spaces, screen scaling and trajectory recording."""

from sciboard_gym.wrappers.plan import Executor, PlanActions
from sciboard_gym.wrappers.record import RecordTrajectory
from sciboard_gym.wrappers.sb3 import ImageObservation, SB3Actions
from sciboard_gym.wrappers.scale import ScaleScreen

__all__ = ["Executor", "ImageObservation", "PlanActions", "RecordTrajectory", "SB3Actions", "ScaleScreen"]
