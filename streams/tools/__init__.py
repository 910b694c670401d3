"""Offline commands over topics: load, rebuild, replay, lineage."""
