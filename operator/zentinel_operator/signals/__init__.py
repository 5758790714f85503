"""Observe: turn pods, metrics, upstream health, certificates, config and logs into snapshots."""
