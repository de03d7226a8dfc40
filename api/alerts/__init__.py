"""Alert history, read from the alerting service's store."""
