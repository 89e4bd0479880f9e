"""Model families behind one interface, validation splits, metrics and the MLflow registry."""
