"""Respond: remediation actions and their guardrails."""
