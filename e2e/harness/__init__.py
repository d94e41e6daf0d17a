"""The e2e harness: simulated nodes and pods on one machine, probes with real packets, scenarios as data."""
