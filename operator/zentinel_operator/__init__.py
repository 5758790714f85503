"""Zentinel incident operator."""
