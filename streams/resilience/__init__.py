"""One bad record costs one record: dead letters, retries, the dlq tools and the record rules
checked at the edges."""
