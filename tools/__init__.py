"""Developer commands: `python -m tools.graph` (component graph), `python -m tools.benchmark` (evaluation cost)."""
