"""Baseline agents (generalist-only, specialist-only, oracle, random), agent specs, and the comparison
runner with its metrics, plot and trajectory viewer (``sciboard compare``, ``sciboard view``)."""

from baselines.generalist import GeneralistAgent
from baselines.oracle import OracleAgent
from baselines.random_agent import RandomAgent
from baselines.specialist import SpecialistAgent

__all__ = ["GeneralistAgent", "OracleAgent", "RandomAgent", "SpecialistAgent"]
