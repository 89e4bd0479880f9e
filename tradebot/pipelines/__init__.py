"""Pipeline steps as plain functions (ingest, features, train, promote, trade, report).

Runnable and testable without Prefect; the flows in ``tradebot.flows`` only wire them.
"""
