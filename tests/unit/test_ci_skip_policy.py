"""In CI a skipped kernel or API test must fail the run; locally it may skip."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

CONFTEST = (Path(__file__).resolve().parents[1] / "conftest.py").read_text()
SKIPPING_TEST = "import pytest\n\ndef test_needs_kernel():\n    pytest.skip('no kernel here')\n"


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeconftest(CONFTEST.replace("from tests.support.netns import throwaway_netns\n", ""))
    pytester.makeini("[pytest]\nmarkers =\n    kernel: k\n    api: a\n")
    for group in ("kernel", "api", "unit"):
        pytester.mkdir(group)
        (pytester.path / group / f"test_{group}_skip.py").write_text(SKIPPING_TEST)
    return pytester


def test_ci_turns_kernel_and_api_skips_into_failures(suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    result = suite.runpytest_subprocess()
    result.assert_outcomes(failed=2, skipped=1)
    result.stdout.fnmatch_lines(["*CI=true: a kernel/API test must run*"])


def test_outside_ci_skips_stay_skips(suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    suite.runpytest_subprocess().assert_outcomes(skipped=3)
