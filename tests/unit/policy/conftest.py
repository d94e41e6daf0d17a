"""Hypothesis profiles for the policy property tests: ``default`` is fast; TRINET_HYPOTHESIS_PROFILE=heavy digs."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "default", max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=False
)
settings.register_profile("heavy", max_examples=5000, deadline=None, suppress_health_check=list(HealthCheck))
settings.load_profile(os.environ.get("TRINET_HYPOTHESIS_PROFILE", "default"))
