"""The pure core: triage, severity, lifecycle and guardrail decisions. No I/O lives here
(enforced by the import-linter contract in pyproject.toml)."""
