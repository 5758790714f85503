"""The local Kubernetes control plane used by the tests and the demo (not part of the operator)."""
