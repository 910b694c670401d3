"""Claude: the client (retries, deadline) and the enricher (batching, budget, cache, fallback)."""
