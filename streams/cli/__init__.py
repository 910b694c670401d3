"""The `ticktide` command line (Typer wiring only).

app.py is the root app: it registers every command. One module per command, grouped by
what the user does:

* events/   put events on topics or read them: produce, consume, command
* stack/    run the pieces: broker, worker, dev, topics
* history/  work over what topics hold: replay, parity, rebuild, explain, dlq
* enrich/   Claude over history: enrich backfill (Message Batches)

options.py (the flags every command shares) and safe_text.py (printing untrusted text)
serve all of them. A new command goes in the group it belongs to and is registered in
app.py.
"""

from streams.cli.app import main  # the console script's entry point (pyproject.toml)

__all__ = ["main"]
