"""The worker's view of itself: lifecycle, readiness, lag, and its Prometheus metrics."""
