"""The labs page's Slurm recipe (book/labs.md, "A class of thousands: grading in shards"), run for real.

The test starts a one-machine Slurm from Debian's packages (munged, slurmctld and slurmd as root, with a key, a
slurm.conf and state folders of its own in a temporary folder), saves the page's array script unchanged in a
checkout of the course, and types the page's commands into bash as an instructor would, with LAB=labdemo (the
grader's small test lab: twelve notebooks grade in seconds, where lab1's torch costs some 8 CPU seconds each) and
N=3. One shard's task is made to fail (a file lies where its output folder goes): the merge must wait for ever and
`merge` typed by hand must refuse; then the page's recovery commands grade that shard again and merge, and the
merged folder must hold exactly the files one run over the whole class writes. Every daemon stops afterwards, also
when the test fails, and the temporary folder goes. `make test-cluster` installs the packages (`make slurm`).
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from utils.grading.release import release_all

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "book" / "labs.md"
SECTION = "### A class of thousands: grading in shards"
TOOLS = ("munged", "mungekey", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "scancel", "sinfo")
LAB, SHARDS, FAILING = "labdemo", 3, 2
FIXTURES = ROOT / "tests" / "fixtures" / "grading" / "solutions"
TABLES = ("grades.csv", "summary.csv", "written.csv")
GRACE = 30  # seconds a grader's processes may take to end after it exited (its harness shuts down on its own)
WAIT = 240  # seconds a job may take before the test gives up (about 30 on two busy cores)


# ------------------------------------------------------------------------------------------------ the page


def page_blocks() -> list[str]:
    """The fenced bash blocks of the page's shards section, in order."""
    text = PAGE.read_text(encoding="utf-8")
    section = text[text.index(SECTION):]
    end = re.search(r"^#{2,3} ", section[len(SECTION):], re.M)  # the next heading (bash comments have one #)
    section = section[:len(SECTION) + end.start()] if end else section
    return re.findall(r"^```bash\n(.*?)^```", section, re.M | re.S)


def page_script() -> str:
    """The array script, as the page prints it."""
    (script,) = [b for b in page_blocks() if b.startswith("#!/bin/bash\n#SBATCH")]
    return script


def page_commands(first_line: str) -> str:
    """The block of commands whose first line starts with `first_line` (e.g. 'LAB=')."""
    (block,) = [b for b in page_blocks() if b.startswith(first_line)]
    return block


def with_value(block: str, name: str, value: object) -> str:
    """The block with its `name=...` line set to `value`, as an instructor edits it."""
    line = re.compile(rf"^{name}=\S+", re.M)
    assert line.search(block), f"the page's block sets no {name}=: {block}"
    return line.sub(f"{name}={value}", block, count=1)


def page_merge() -> str:
    """The merge command the page's blocks submit (with $LAB in it), to type by hand."""
    (command,) = set(re.findall(r'--wrap "([^"]+)"', page_commands("LAB=") + page_commands("K=")))
    return command


def test_the_page_has_the_script_and_both_command_blocks():
    script, submit, again = page_script(), page_commands("LAB="), page_commands("K=")
    assert '--shard "$SLURM_ARRAY_TASK_ID/$shards"' in script and "#SBATCH --array" not in script
    for block in (submit, again):
        assert "--dependency=afterok:$JOB" in block and "--array=" in block
    assert "scancel $MERGE" in again and "--array=$K grade-shards.sh $LAB $N" in again
    assert page_merge().startswith(".venv/bin/python -m utils.grading merge --out grading-out/$LAB ")


# ------------------------------------------------------------------------------------------ the cluster


@dataclass
class Slurm:
    """A running one-node cluster: its folder and the environment its client commands need."""

    folder: Path
    env: dict[str, str]

    def run(self, command: str, cwd: Path) -> str:
        """A command line typed into bash in `cwd`; its output (it must succeed)."""
        done = subprocess.run(["bash", "-e", "-c", command], cwd=cwd, env=self.env,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, f"{command}\n{done.stdout}{done.stderr}"
        return done.stdout

    def jobs(self, job: str) -> dict[str, dict[str, str]]:
        """Each task of a job (or the job) by its id ('12_3' for a task): its scontrol fields."""
        out = self.run(f"scontrol --oneliner show job {job}", self.folder)
        tasks = {}
        for line in out.splitlines():
            fields = dict(re.findall(r"(\w+)=(\S*)", line))
            task = fields.get("ArrayTaskId")
            tasks[f"{fields['ArrayJobId']}_{task}" if task else fields["JobId"]] = fields
        return tasks

    def wait(self, job: str, until) -> dict[str, dict[str, str]]:
        """Poll a job's tasks until `until(tasks)` holds."""
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            tasks = self.jobs(job)
            if until(tasks):
                return tasks
            time.sleep(1)
        raise AssertionError(f"job {job} still not done after {WAIT} s: {tasks}")


def done(tasks: dict[str, dict[str, str]]) -> bool:
    """Whether every task has ended (or waits on a dependency that can never be satisfied)."""
    return all(t["JobState"] not in ("PENDING", "RUNNING", "CONFIGURING", "COMPLETING") or
               t.get("Reason") == "DependencyNeverSatisfied" for t in tasks.values())


def free_ports(count: int) -> list[int]:
    """Ports nobody listens on now (the cluster's own, so that it never meets a Slurm of the machine)."""
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def memory_mb() -> int:
    """The machine's memory, as slurmd counts it."""
    return int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1)) // 1024


def slurm_conf(folder: Path, socket_path: Path) -> str:
    """A minimal configuration: one node, one partition, no accounting, no cgroups, state in `folder`."""
    ctld_port, d_port = free_ports(2)
    return "\n".join([
        "ClusterName=coursetest", "SlurmctldHost=localhost", f"SlurmctldPort={ctld_port}", f"SlurmdPort={d_port}",
        "SlurmUser=root", "SlurmdUser=root", "AuthType=auth/munge", "CredType=cred/munge",
        f"AuthInfo=socket={socket_path}", f"StateSaveLocation={folder}/ctld", f"SlurmdSpoolDir={folder}/d",
        f"SlurmctldPidFile={folder}/slurmctld.pid", f"SlurmdPidFile={folder}/slurmd.pid",
        f"SlurmctldLogFile={folder}/slurmctld.log", f"SlurmdLogFile={folder}/slurmd.log",
        "ProctrackType=proctrack/linuxproc", "TaskPlugin=task/none", "MpiDefault=none", "MailProg=/bin/true",
        "JobAcctGatherType=jobacct_gather/none", "AccountingStorageType=accounting_storage/none",
        "SelectType=select/cons_tres", "SelectTypeParameters=CR_Core", "ReturnToService=2",
        # The node claims what the page's three tasks ask for (2 CPUs and 6G each), so that they run side by side as
        # on three nodes: config_overrides makes slurmd report the configured node; CR_Core does not count memory.
        "SlurmdParameters=config_overrides",
        f"NodeName=localhost CPUs={2 * SHARDS} RealMemory={max(memory_mb(), 8192)} State=UNKNOWN",
        "PartitionName=course Nodes=localhost Default=YES MaxTime=INFINITE State=UP", ""])


def start(argv: list[str], log: Path) -> subprocess.Popen:
    """A daemon in the foreground, in a session of its own, its output into `log`."""
    with log.open("wb") as out:
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def stop(process: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL after 15 s, to the daemon and everything left in its session."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)
    try:
        os.killpg(process.pid, signal.SIGKILL)  # slurmstepd and job processes the daemon forked, if any remain
    except ProcessLookupError:
        pass


def leftovers(folder: Path) -> dict[int, str]:
    """Processes that still run with `folder` in their command line or as their working folder, with the line."""
    found = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            cwd = os.readlink(proc / "cwd")
        except OSError:
            continue
        if str(folder) in cmdline or cwd.startswith(str(folder)):
            found[int(proc.name)] = f"{cmdline[:200]} (in {cwd})"
    return found


def wait_for(check, seconds: float, what: str, logs: list[Path]) -> None:
    """Poll `check()` until it holds; else fail with the daemons' logs."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    text = "\n".join(f"--- {log}\n{log.read_text(errors='replace')[-3000:]}" for log in logs if log.exists())
    pytest.fail(f"{what} within {seconds} s\n{text}")


@pytest.fixture(scope="module")
def slurm():
    """munged, slurmctld and slurmd started for this module, stopped (and their folder removed) whatever happens."""
    if os.geteuid() != 0:
        pytest.skip("starting munged, slurmctld and slurmd needs root (make test-cluster as root, e.g. in CI)")
    missing = [name for name in TOOLS if not shutil.which(name)]
    if missing:
        pytest.skip(f"Slurm or MUNGE is not installed (no {', '.join(missing)}): run `make slurm` as root")
    folder = Path(tempfile.mkdtemp(prefix="course-slurm-"))
    folder.chmod(0o755)
    daemons: list[subprocess.Popen] = []
    try:
        (folder / "munge").mkdir(mode=0o700)
        key, sock = folder / "munge" / "munge.key", folder / "munge.socket"
        subprocess.run(["mungekey", "--create", "--keyfile", str(key)], check=True, capture_output=True)
        logs = [folder / "munged.log", folder / "slurmctld.log", folder / "slurmd.log"]
        daemons.append(start(["munged", "--foreground", "--force", "--socket", str(sock), "--key-file", str(key),
                              "--pid-file", str(folder / "munge" / "munged.pid"), "--seed-file",
                              str(folder / "munge" / "seed"), "--log-file", str(logs[0])], folder / "munged.out"))
        wait_for(sock.exists, 20, "munged did not open its socket", logs + [folder / "munged.out"])
        conf = folder / "slurm.conf"
        conf.write_text(slurm_conf(folder, sock))
        for sub in ("ctld", "d"):
            (folder / sub).mkdir()
        daemons.append(start(["slurmctld", "-D", "-i", "-f", str(conf)], folder / "slurmctld.out"))
        daemons.append(start(["slurmd", "-D", "-f", str(conf), "-N", "localhost"], folder / "slurmd.out"))
        env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root"), "LANG": "C.UTF-8",
               "SLURM_CONF": str(conf)}

        def idle() -> bool:
            out = subprocess.run(["sinfo", "--noheader", "--format=%T"], env=env, capture_output=True, text=True)
            return out.stdout.strip() == "idle"

        wait_for(idle, 60, "the node did not become idle", logs + [folder / "slurmctld.out", folder / "slurmd.out"])
        yield Slurm(folder, env)
        subprocess.run(["scancel", "--user", "root"], env=env, capture_output=True, timeout=30)
        wait_for(lambda: not subprocess.run(["squeue", "--noheader"], env=env, capture_output=True,
                                            text=True).stdout.strip(), 30, "cancelled jobs did not end", logs)
    finally:
        for process in reversed(daemons):
            stop(process)
        deadline = time.monotonic() + GRACE
        while (stray := leftovers(folder)) and time.monotonic() < deadline:
            time.sleep(0.5)
        for pid in stray:
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(folder, ignore_errors=True)
    assert not stray, f"processes outlived the cluster: {stray}"


# -------------------------------------------------------------------------------------------- the class


def write_class(folder: Path, released: Path) -> None:
    """Twelve labdemo submissions named as Canvas names them, three students each: the solution, the released lab
    (no answer), the solution with a wrong `square`, and a file that is not a notebook."""
    solution = json.loads((FIXTURES / LAB / f"{LAB}.ipynb").read_text(encoding="utf-8"))
    wrong = json.loads(json.dumps(solution))
    for cell in wrong["cells"]:
        if cell["metadata"].get("nbgrader", {}).get("grade_id") == "square":
            cell["source"] = "def square(x):\n    return 9"
    variants = [json.dumps(solution).encode(), (released / LAB / f"{LAB}.ipynb").read_bytes(),
                json.dumps(wrong).encode(), b"{not a notebook"]
    folder.mkdir(parents=True)
    for k in range(12):
        sid = 30001 + k
        (folder / f"student{sid}_{sid}_{700000 + sid}_{LAB}.ipynb").write_bytes(variants[k % len(variants)])


@pytest.fixture
def checkout(slurm):
    """A checkout as the page expects it, inside the cluster's folder: the venv and utils of this one, solutions/
    holding the test lab, its class in submissions/labdemo/, and the page's script saved as grade-shards.sh."""
    folder = slurm.folder / "checkout"
    folder.mkdir()
    for name in (".venv", "utils"):
        (folder / name).symlink_to(ROOT / name)
    (folder / "solutions").symlink_to(FIXTURES)
    release_all(FIXTURES, slurm.folder / "released", [LAB])
    write_class(folder / "submissions" / LAB, slurm.folder / "released")
    (folder / "grade-shards.sh").write_text(page_script(), encoding="utf-8")
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def outputs(folder: Path) -> dict[str, bytes]:
    """The files merge writes, by name: the three tables and every feedback page."""
    files = {name: (folder / name).read_bytes() for name in TABLES}
    files.update({f"feedback/{p.name}": p.read_bytes() for p in sorted((folder / "feedback").iterdir())})
    return files


def test_the_page_recipe_grades_a_class_in_shards_on_slurm(slurm, checkout):
    ck, merge_by_hand = checkout, f"LAB={LAB}\n{page_merge()}"
    blocker = ck / "grading-out" / f"{LAB}-shard{FAILING}"
    blocker.parent.mkdir()
    blocker.write_text("not a folder: the task that grades this shard fails\n")

    # one run over the whole class, beside the cluster's (for the comparison at the end)
    whole = ck / "whole"
    local = subprocess.Popen([".venv/bin/python", "-m", "utils.grading", "grade", "--lab", LAB, "--id-pattern",
                              "canvas", "--quiet", "--jobs", "2", "--memory", "2G", "--out", str(whole),
                              f"submissions/{LAB}/"], cwd=ck, env=slurm.env, stderr=subprocess.PIPE, text=True)

    # the page's first block, with LAB=labdemo and N=3: the array, and the merge that waits for it
    submit = with_value(with_value(page_commands("LAB="), "LAB", LAB), "N", SHARDS)
    job, merge = slurm.run(submit + '\necho "$JOB $MERGE"', ck).split()[-2:]
    tasks = slurm.wait(job, lambda t: len(t) == SHARDS and done(t))
    states = {k: (t["JobState"], t["ExitCode"]) for k, t in tasks.items()}
    assert states == {f"{job}_{k}": ("COMPLETED", "0:0") if k != FAILING else ("FAILED", "2:0")
                      for k in range(1, SHARDS + 1)}, states
    assert "is a file, not a folder" in (ck / f"slurm-{job}_{FAILING}.out").read_text()  # the task's log says why

    # the merge never runs: it waits for ever, and nothing is merged
    never = lambda tasks: [t["Reason"] for t in tasks.values()] == ["DependencyNeverSatisfied"]
    (waiting,) = slurm.wait(merge, never).values()  # the reason is Dependency until the scheduler looks again
    assert waiting["JobState"] == "PENDING", waiting
    assert not (ck / "grading-out" / LAB).exists()

    # merge typed by hand refuses: the stray file is not a grading folder; without it, a shard is missing
    by_hand = subprocess.run(["bash", "-c", merge_by_hand], cwd=ck, env=slurm.env, capture_output=True, text=True)
    assert by_hand.returncode == 2 and "is not a grading output folder" in by_hand.stderr, by_hand.stderr
    blocker.unlink()
    by_hand = subprocess.run(["bash", "-c", merge_by_hand], cwd=ck, env=slurm.env, capture_output=True, text=True)
    assert by_hand.returncode == 2 and f"shard {FAILING}/{SHARDS} missing" in by_hand.stderr, by_hand.stderr
    assert not (ck / "grading-out" / LAB).exists()

    # the page's recovery block, typed in the same shell: cancel the merge, grade the shard again, merge
    again = with_value(page_commands("K="), "K", FAILING)
    job2, merge2 = slurm.run(f"{submit.split('JOB=')[0]}MERGE={merge}\n{again}\necho \"$JOB $MERGE\"", ck).split()[-2:]
    (cancelled,) = slurm.jobs(merge).values()
    assert cancelled["JobState"] == "CANCELLED", cancelled
    retried = slurm.wait(job2, done)
    assert [(t["ArrayTaskId"], t["JobState"]) for t in retried.values()] == [(str(FAILING), "COMPLETED")]
    (merged,) = slurm.wait(merge2, done).values()
    assert (merged["JobState"], merged["ExitCode"]) == ("COMPLETED", "0:0"), merged
    assert f"merged {SHARDS} folder(s), 12 submissions" in (ck / f"slurm-{merge2}.out").read_text()

    # the merged folder holds what one run over the whole class writes, byte for byte
    assert local.wait(timeout=WAIT) == 0, local.stderr.read()
    mine, theirs = outputs(ck / "grading-out" / LAB), outputs(whole)
    assert mine.keys() == theirs.keys() and len(mine) == len(TABLES) + 12
    for name in mine:
        assert mine[name] == theirs[name], name
    statuses = [row["status"] for row in csv.DictReader(io.StringIO(mine["summary.csv"].decode("utf-8-sig")))]
    assert statuses == ["needs-reading", "graded", "needs-reading", "invalid-notebook"] * 3, statuses
