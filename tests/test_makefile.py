"""The Makefile: every declared target exists, and `make test-fast` needs neither npm nor Chromium."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAKEFILE = (ROOT / "Makefile").read_text(encoding="utf-8")


def test_every_phony_target_has_a_rule():
    phony = re.search(r"^\.PHONY:(.*)$", MAKEFILE, re.M).group(1).split()
    rules = set(re.findall(r"^([A-Za-z][\w-]*)\s*:(?!=)", MAKEFILE, re.M))
    assert phony and not set(phony) - rules


@pytest.mark.skipif(not shutil.which("make"), reason="no make")
def test_test_fast_runs_without_npm_or_chromium():
    def recipe(target: str) -> str:
        return subprocess.run(["make", "-n", "-B", target], cwd=ROOT, capture_output=True, text=True, check=True).stdout

    fast, full = recipe("test-fast"), recipe("test")
    assert "pytest tests" in fast and "--nbval" in fast
    assert not re.search(r"npm|chromium|browser_tests|jupyter-book build", fast)
    assert all(step in full for step in ("pytest tests", "--nbval", "npm ci", "jupyter-book build", "browser_tests"))


@pytest.mark.skipif(not shutil.which("make"), reason="no make")
def test_a_python_outside_3_11_to_3_13_is_refused(tmp_path):
    fake = tmp_path / "python3.10"
    fake.write_text("#!/bin/sh\n[ \"$1\" = --version ] && echo 'Python 3.10.0' && exit 0\nexit 1\n")
    fake.chmod(0o755)
    result = subprocess.run(["make", "-B", f"PYTHON={fake}", f"VENV={tmp_path}/venv", "install"], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode != 0 and "needs Python 3.11, 3.12 or 3.13" in result.stdout + result.stderr
    assert "Python 3.10.0" in result.stdout + result.stderr and not (tmp_path / "venv").exists()
