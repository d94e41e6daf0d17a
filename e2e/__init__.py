"""End-to-end harness: a real control plane and simulated nodes on this machine."""
