"""tradebot: a Prefect-orchestrated MLOps platform for machine-learning trading bots."""

__version__ = "0.1.0"
