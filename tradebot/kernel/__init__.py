"""Shared kernel: settings, state home, database schema, domain types and the market clock.

Every layer may import from here; nothing here imports from any other tradebot layer.
"""
