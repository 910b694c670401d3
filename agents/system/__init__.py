"""The agents of the system.* topics: this worker's heartbeats (heartbeat.py), everyone's
health folded into the health table (health.py), and the retries of failed records (retry.py)."""
