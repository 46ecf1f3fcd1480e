"""Attacks on the zygote (utils.grading.zygote), end to end: lab 1 notebooks graded by the real command line in one
run, one after another (--jobs 1, in name order), every worker forked from the same zygote.

As in test_grading_attacks, a submission defines `make_embedding` correctly only when its attack found what it looked
for, so its q5 passes exactly when the attack worked; the plain submissions graded after the attacks must pass.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest

from test_grading_attacks import CORRECT, IF_FOUND, lab1_with, processes_with
from utils.grading import sandbox as sandbox_module, zygote as zygote_module
from utils.grading.harness import JobOptions, Link, StudentProcess, WORKER_SOURCE, worker_env, job_limits
from utils.grading.lms import read_csv
from utils.grading.sandbox import Limits, SandboxUnavailable, check_sandbox, prepare_library
from utils.grading.zygote import Zygote, ZygoteFailure

ROOT = Path(__file__).resolve().parents[1]
MARKER = f"zygote-{secrets.token_hex(8)}"

try:
    check_sandbox()
except SandboxUnavailable as error:  # pragma: no cover - the Makefile installs bubblewrap
    pytest.skip(f"no sandbox on this machine: {error}", allow_module_level=True)

#: Signals every pid it can name (the zygote, a sibling worker, the harness), except itself; it passes q5 only if
#: some other process took a signal (pid 1 of its own namespace ignores them and is not counted).
SIGNAL_EVERYONE = """
import os, signal
found = False
for pid in range(2, 70000):
    if pid != os.getpid():
        try:
            os.kill(pid, signal.SIGKILL)
            found = True
        except OSError:
            pass
try:
    os.kill(-1, signal.SIGKILL)  # every process it may signal but itself and its namespace's init
except OSError:
    pass
""" + IF_FOUND

#: Attaches to, or reads the memory of, every process it can see or guess (the zygote holds the lab's setup state).
TRACE_OTHERS = """
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
found = False
pids = {int(p) for p in os.listdir("/proc") if p.isdigit()} | set(range(1, 200))
for pid in pids - {os.getpid()}:
    if libc.ptrace(16, pid, None, None) == 0:  # PTRACE_ATTACH
        found = True
    try:
        with open(f"/proc/{pid}/mem", "rb") as memory:
            memory.read(1)
        found = True
    except OSError:
        pass
try:
    os.setns(os.open("/proc/1/ns/pid", os.O_RDONLY), 0)
    found = True
except (OSError, AttributeError):
    pass
libc.unshare.argtypes = [ctypes.c_int]
if libc.unshare(0x10000000) == 0:  # CLONE_NEWUSER: it would get capabilities in a namespace of its own
    found = True
""" + IF_FOUND

#: Leaves files in every writable place, a daemon and a secret in its memory, for the next submission.
LEAVE_BEHIND = f"""
import os
secret = "LEFT-" + "BEHIND-" + "{MARKER}"
for folder in (".", os.environ.get("TMPDIR", "/tmp"), "/tmp", "/dev/shm", "utils", "/proc/1/cwd"):
    try:
        with open(os.path.join(folder, "left-behind"), "w") as handle:
            handle.write(secret)
    except OSError:
        pass
if os.fork() == 0:
    os.setsid()
    os.execv("/bin/sh", ["/bin/sh", "-c", "sleep 600; : {MARKER}-daemon"])
{CORRECT}"""

#: Looks for what the previous submission left: files, processes, and its secret in this process's memory.
FIND_LEFTOVERS = """
import os, re
found = False
for folder in (".", os.environ.get("TMPDIR", "/tmp"), "/tmp", "/dev/shm", "utils", "/proc/1/cwd"):
    found = found or os.path.exists(os.path.join(folder, "left-behind"))
for pid in (p for p in os.listdir("/proc") if p.isdigit()):
    try:
        found = found or b"sleep" in open(f"/proc/{pid}/cmdline", "rb").read()
    except OSError:
        pass
needle = re.compile(("LEFT-" + "BEHIND-").encode() + rb"zygote-[0-9a-f]{16}")
with open("/proc/self/maps") as maps, open("/proc/self/mem", "rb") as memory:
    for line in maps:
        fields = line.split()
        start, end = (int(x, 16) for x in fields[0].split("-"))
        if fields[1].startswith("rw") and end - start < 2**28:
            try:
                memory.seek(start)
                found = found or bool(needle.search(memory.read(end - start)))
            except (OSError, ValueError, OverflowError):
                pass
""" + IF_FOUND

#: Passes q5 only when its worker was forked from the zygote (PID 1 of its namespace is then a fork of it, not bwrap).
FORKED = """
found = b"zygote" in open("/proc/1/cmdline", "rb").read()
""" + IF_FOUND


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Grade the attacks, then plain submissions, in one run of the command line with --jobs 1."""
    root = tmp_path_factory.mktemp("zygote")
    submissions, out = root / "submissions", root / "out"
    submissions.mkdir()
    notebooks = {"a-signal-everyone": SIGNAL_EVERYONE, "b-trace-others": TRACE_OTHERS,
                 "c-leave-behind": LEAVE_BEHIND, "d-find-leftovers": FIND_LEFTOVERS, "e-forked": FORKED}
    for name, source in notebooks.items():
        (submissions / f"{name}.ipynb").write_text(json.dumps(lab1_with(q5_make_embedding=source)))
    process = subprocess.run([sys.executable, "-m", "utils.grading", "grade", "--lab", "lab1", "--out", str(out),
                              "--jobs", "1", "--timeout", "120", "--quiet", str(submissions)],
                             cwd=ROOT, capture_output=True, text=True, timeout=1800)
    rows = {r["submission"]: r for r in read_csv(out / "grades.csv") if r["question"] == "q5_tests"}
    return {"process": process, "rows": rows}


def test_the_run_completes_with_a_row_per_submission(graded):
    assert graded["process"].returncode == 0, graded["process"].stderr[-3000:]
    assert len(graded["rows"]) == 5 and all(r["status"] != "grader-error" for r in graded["rows"].values())


def test_workers_are_forked_from_the_zygote(graded):
    assert graded["rows"]["e-forked"]["status"] == "passed", graded["rows"]["e-forked"]


@pytest.mark.parametrize("name", ["a-signal-everyone", "b-trace-others", "d-find-leftovers"])
def test_no_submission_reaches_the_zygote_a_sibling_or_what_the_previous_one_left(graded, name):
    row = graded["rows"][name]
    assert row["status"] == "failed" and float(row["score"]) == 0, row


def test_the_submission_leaving_things_behind_is_graded_and_its_daemon_is_gone(graded):
    assert graded["rows"]["c-leave-behind"]["status"] == "passed"
    assert processes_with(MARKER) == []


def test_a_dead_zygote_costs_no_row_the_worker_starts_from_nothing(tmp_path):
    """A zygote that died (here: killed) makes StudentProcess start a sandbox of its own, which works."""
    library = prepare_library(tmp_path)
    options = JobOptions(timeout=60, memory=2 * 2**30, output_limit=10_000, max_restarts=1, processes=64,
                         disk=2**26, sandbox=True, library=str(library))
    zygote = Zygote([sys.executable, "-c", WORKER_SOURCE], worker_env(), job_limits(options), library)
    zygote.setup(["answer = 42"])
    zygote.ready(60)
    student = StudentProcess(options, zygote)
    assert student.start() is True
    assert student.link.request({"op": "get", "name": "answer"}) == 42
    student.stop()
    zygote.sandbox.kill()
    assert student.start() is False  # not forked: the caller replays the setup cells
    student.link.deadline = time.monotonic() + 60
    assert student.link.exchange({"op": "run", "source": "answer = 7"}, [])[0]["ok"] is True
    assert student.link.request({"op": "get", "name": "answer"}) == 7
    student.stop()
    with pytest.raises(ZygoteFailure):
        zygote.fork(Limits())


def test_without_a_pids_cgroup_a_forked_worker_is_held_to_its_process_limit(tmp_path, monkeypatch):
    """Where no pids cgroup exists, the fork sets RLIMIT_NPROC in its own user namespace: the worker and what it
    starts count, not the zygote or other workers."""
    monkeypatch.setattr(sandbox_module, "cgroup_folders", lambda: {})
    monkeypatch.setattr(zygote_module, "cgroup_folders", lambda: {})
    library = prepare_library(tmp_path)
    zygote = Zygote([sys.executable, "-c", WORKER_SOURCE], worker_env(), Limits(), library)
    try:
        zygote.setup(["import subprocess"])
        zygote.ready(60)
        box, sock = zygote.fork(Limits(processes=8))
        student = StudentProcess(JobOptions(60, 2**31, 10_000, 0, 8, 2**26, True, str(library)))
        student.sandbox = box
        student.link = Link(sock, student.death)
        student.link.deadline = time.monotonic() + 60
        code = ("started = 0\nfor _ in range(20):\n    try:\n        subprocess.Popen(['sleep', '5'])\n"
                "        started += 1\n    except OSError:\n        break\n")
        assert student.link.exchange({"op": "run", "source": code}, [])[0]["ok"] is True
        assert 0 < student.link.request({"op": "get", "name": "started"}) <= 8
        student.stop()
    finally:
        zygote.stop()
