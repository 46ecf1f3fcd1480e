"""The grader where instructors install it: a course folder under /tmp whose path has a space, a .venv reached through
a symbolic link, and an ordinary (non-root) user. Each test runs `grade` or the sandbox the way that user would."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from utils.grading import sandbox as sandbox_module
from utils.grading.lms import read_csv
from utils.grading.sandbox import SandboxUnavailable, check_sandbox

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "grading" / "solutions"
#: The ordinary user the suite creates (as root) to run the sandbox without privileges.
PROBE_USER = "grading-probe"

try:
    check_sandbox()
except SandboxUnavailable as error:  # pragma: no cover - the Makefile installs bubblewrap
    pytest.skip(f"no sandbox on this machine: {error}", allow_module_level=True)


@pytest.fixture
def tmp_folder():
    """A fresh folder directly under /tmp (where the sandbox's own /tmp used to collide), readable by others."""
    if not os.path.isdir("/tmp"):
        pytest.skip("this machine has no /tmp")
    folder = Path(tempfile.mkdtemp(prefix="grading-install-", dir="/tmp"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_grade_works_from_a_path_with_a_space_under_tmp_with_a_symlinked_venv(tmp_folder):
    course = tmp_folder / "my course"
    shutil.copytree(ROOT / "utils", course / "utils", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(FIXTURES / "labdemo", course / "solutions" / "labdemo")
    (course / ".venv").symlink_to(Path(sys.prefix).resolve(), target_is_directory=True)
    submissions = course / "submissions"
    submissions.mkdir()
    shutil.copy(FIXTURES / "labdemo" / "labdemo.ipynb", submissions / "alice.ipynb")
    python = course / ".venv" / "bin" / "python"
    result = subprocess.run([str(python), "-m", "utils.grading", "grade", "--lab", "labdemo", "--solutions",
                             str(course / "solutions"), "--out", str(course / "out"), "--jobs", "1", str(submissions)],
                            cwd=course, capture_output=True, text=True, timeout=600,
                            env={**os.environ, "PYTHONPATH": ""})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "sandbox: bubblewrap" in result.stdout
    rows = read_csv(course / "out" / "grades.csv")
    statuses = {row["question"]: row["status"] for row in rows if row["question"].startswith("test_")}
    assert statuses == {"test_square": "passed", "test_squares": "passed", "test_mean": "passed"}, rows


def test_the_start_up_check_runs_the_real_sandbox_and_names_the_cause(monkeypatch):
    """A sandbox that cannot run the grader's Python (here: its installation is not bound) fails the check, with
    the reason bubblewrap gave and what to do, before any submission is graded."""
    check_sandbox.cache_clear()
    monkeypatch.setattr(sandbox_module, "_python_binds", lambda: [])
    try:
        with pytest.raises(SandboxUnavailable, match=r"does not run in the sandbox: .*execvp.*\.venv/bin/python"):
            check_sandbox()
    finally:
        monkeypatch.undo()
        check_sandbox.cache_clear()
        check_sandbox()


@pytest.fixture
def ordinary_user():
    """The command prefix that runs a program as an ordinary user: this one, or (as root) PROBE_USER, created for
    the test and removed after it (a PROBE_USER found already, left by an interrupted run, is reused and removed)."""
    if os.geteuid() != 0:
        yield []
        return
    if shutil.which("useradd") is None or shutil.which("runuser") is None or shutil.which("userdel") is None:
        pytest.skip("running as root without useradd/runuser/userdel: cannot make an ordinary user to run the sandbox")
    try:
        pwd.getpwnam(PROBE_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", PROBE_USER],
                       check=True, capture_output=True)
    try:
        yield [shutil.which("runuser"), "-u", PROBE_USER, "--"]
    finally:
        subprocess.run(["userdel", PROBE_USER], check=True, capture_output=True)


def test_an_ordinary_user_runs_the_sandbox_with_its_limits(tmp_folder, ordinary_user):
    """bubblewrap without root: unprivileged user namespaces, the user's own uid outside, 1000 inside. The program
    is the system's Python with the sandbox module alone (an ordinary user cannot read root's installation)."""
    python = shutil.which("python3", path="/usr/bin:/bin")
    if python is None:
        pytest.skip("no system python3 in /usr/bin or /bin for the ordinary user")
    package = tmp_folder / "utils" / "grading"
    package.mkdir(parents=True)
    for name in ("__init__.py", "grading/__init__.py", "grading/sandbox.py"):
        shutil.copy(ROOT / "utils" / name, tmp_folder / "utils" / name)
    for path in [tmp_folder, *tmp_folder.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    program = """
import json, sys
from utils.grading.sandbox import Limits, Sandbox, check_sandbox
description = check_sandbox()
with Sandbox(Limits(processes=8)) as box:
    code = ("import os, subprocess; print(os.getuid(), flush=True); "
            "print(sum(1 for _ in range(20) if subprocess.Popen(['sleep', '5']) and True))")
    process = box.start([sys.executable, "-c", code])
    process.wait(60)
    box.kill()
    print(json.dumps({"check": description, "exit": box.exit_description(), "output": box.output()}))
"""
    result = subprocess.run([*ordinary_user, python, "-c", program], cwd=tmp_folder, capture_output=True,
                            text=True, timeout=300, env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"})
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout.splitlines()[-1])
    assert " as uid " in report["check"] and " as uid 0;" not in report["check"], report
    lines = report["output"].splitlines()
    assert lines[0] == "1000", report  # the sandbox's own uid inside
    assert "Resource temporarily unavailable" in report["output"] or "BlockingIOError" in report["output"], report
