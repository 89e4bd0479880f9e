"""Feature definitions and the point-in-time feature store."""
