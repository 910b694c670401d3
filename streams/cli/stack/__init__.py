"""Commands that run the pieces: the embedded broker, a worker, the whole dev stack, and the
catalog's topics."""
