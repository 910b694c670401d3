"""Web views of a worker, one module per area, and the HTTP helpers they share (params)."""
