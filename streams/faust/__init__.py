"""Faust: the app factory, typed topics, the monitor, and the version-guarded patches. The only
place in streams/ that touches Faust internals (a contract in pyproject.toml keeps it so)."""
