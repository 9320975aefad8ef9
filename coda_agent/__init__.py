"""coda_agent."""
