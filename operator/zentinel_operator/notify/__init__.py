"""Escalate: notification receivers and alert intake."""
