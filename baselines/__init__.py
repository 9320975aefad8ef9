"""Baseline agents (oracle, random; generalist-only and specialist-only) and the episode runner."""
