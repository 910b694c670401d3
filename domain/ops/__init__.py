"""Operational policies (pure): the health fold of components, rate limits, retries."""
