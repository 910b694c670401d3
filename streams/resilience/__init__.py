"""One bad record costs one record: dead letters, retries and the dlq tools."""
