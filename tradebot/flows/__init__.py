"""Prefect flows: thin wrappers that read like a table of contents of ``tradebot.pipelines``."""
