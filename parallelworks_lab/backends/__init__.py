"""Scheduler backends: one module per cluster kind behind the protocol in :mod:`.base`."""
