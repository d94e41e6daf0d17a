"""Helpers shared by the test suites (kernel namespaces, control plane)."""
