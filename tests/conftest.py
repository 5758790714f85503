"""Shared pytest configuration. Tiers: tests/unit (no cluster), tests/integration (the local
control plane built from Go modules), tests/e2e (kind, where a container engine answers)."""
