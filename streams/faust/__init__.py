"""Faust: the app class, the typed protocol agents and views use (context.py), typed topics,
the monitor, and the version-guarded patches and private-API helpers. The only place that
touches Faust internals (a contract in pyproject.toml keeps it so)."""
