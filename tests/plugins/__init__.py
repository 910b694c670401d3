"""Agent modules a test plugs into a worker with TICKTIDE_EXTRA_AGENTS."""
