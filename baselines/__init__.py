"""Baseline agents: the oracle (replays a task's known solution) and a random agent."""
