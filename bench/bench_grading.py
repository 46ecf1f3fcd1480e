"""Grading throughput: our grader with --jobs 1 and --jobs 2 against `nbgrader autograde`, on N copies of a lab,
and what the sandbox costs per submission.

    python bench/bench_grading.py [--lab lab1] [--copies 8] [--repeats 2] [--nbgrader-python /path/to/venv/bin/python]

The graders take turns (each repeat runs every grader once, in a rotated order), so a busy shared machine slows
them alike; each row says the load average during its runs. CPU seconds per submission count every process of the
run (grader, fork server, sandboxes, kernels): from a cpuacct cgroup of its own where the machine lets this process
make one, else from the children's resource usage (which misses processes their parents never waited for).

The sandbox's cost shows as the difference between a whole grading run with and without `--no-sandbox`
(bench/bench_sandbox.py measures one start and teardown on its own). With the sandbox, every worker is forked from
a zygote that ran the lab's setup once (utils.grading.zygote); `--no-sandbox` starts each worker from nothing.

nbgrader is not a dependency of the course. To include it, install it into a separate virtual environment
(`python3.12 -m venv /tmp/nbgrader-venv && /tmp/nbgrader-venv/bin/pip install nbgrader`) and pass that
interpreter with --nbgrader-python. Its kernels run this environment's Python (a kernelspec on JUPYTER_PATH),
so both graders execute the same notebooks with the same libraries.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "grading" / "solutions"


def default_lab() -> tuple[str, Path]:
    """lab1 of the course if it exists, else the grader's tiny fixture lab."""
    if (ROOT / "solutions" / "lab1" / "lab1.ipynb").exists():
        return "lab1", ROOT / "solutions"
    return "labdemo", FIXTURES


CPUACCT = Path("/sys/fs/cgroup/cpuacct")


def _cpu_group() -> Path | None:
    """A fresh cpuacct cgroup (v1) for one run, or None where this process may not make one."""
    folder = CPUACCT / f"bench-grading-{os.getpid()}-{time.monotonic_ns()}"
    try:
        folder.mkdir()
    except OSError:
        return None
    return folder


def timed(command: list[str], **kwargs) -> tuple[float, float]:
    """Run a command (failing loudly); (wall seconds, CPU seconds of it and every process it started)."""
    group = _cpu_group()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    join = (lambda: (group / "cgroup.procs").write_text(str(os.getpid()))) if group else None
    result = subprocess.run(command, capture_output=True, text=True, preexec_fn=join, **kwargs)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    if group is not None:
        cpu = int((group / "cpuacct.usage").read_text()) / 1e9
        for _ in range(100):
            try:
                group.rmdir()
                break
            except OSError:
                time.sleep(0.05)
    if result.returncode != 0:
        sys.exit(f"command failed ({result.returncode}): {' '.join(command)}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return seconds, cpu


def ours(lab: str, solutions: Path, submissions: Path, out: Path, jobs: int,
         sandbox: bool = True) -> tuple[float, float]:
    """(wall, CPU) seconds for our grader to grade every submission (cache ignored)."""
    return timed([sys.executable, "-m", "utils.grading", "grade", "--lab", lab, "--solutions", str(solutions),
                  "--out", str(out), "--jobs", str(jobs), "--force", "--quiet", *([] if sandbox else ["--no-sandbox"]),
                  str(submissions)], cwd=ROOT)


def nbgrader(python: str, lab: str, solution: Path, copies: int, work: Path) -> tuple[float, float, float]:
    """(wall, CPU seconds, mean score fraction) for `nbgrader autograde` on the same submissions, in a fresh course
    folder."""
    shutil.rmtree(work, ignore_errors=True)
    course = work / "course"
    (course / "source" / lab).mkdir(parents=True)
    shutil.copy(solution, course / "source" / lab / f"{lab}.ipynb")
    students = [f"s{i:02d}" for i in range(copies)]
    (course / "nbgrader_config.py").write_text(
        "c = get_config()\n"
        f"c.CourseDirectory.root = {str(course)!r}\n"
        f"c.CourseDirectory.db_assignments = [dict(name={lab!r})]\n"
        f"c.CourseDirectory.db_students = [{', '.join(f'dict(id={s!r})' for s in students)}]\n"
        "c.ExecutePreprocessor.timeout = 600\n")
    spec = work / "jupyter" / "kernels" / "python3"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (course)", "language": "python"}))
    bin_dir = str(Path(python).parent)  # nbgrader runs `alembic` from PATH
    env = dict(os.environ, JUPYTER_PATH=str(work / "jupyter"), PATH=bin_dir + os.pathsep + os.environ["PATH"])
    nbgrader_bin = str(Path(bin_dir) / "nbgrader")
    timed([nbgrader_bin, "generate_assignment", lab, "--force"], cwd=course, env=env)
    release = course / "release" / lab / f"{lab}.ipynb"
    for student in students:
        target = course / "submitted" / student / lab
        target.mkdir(parents=True)
        shutil.copy(solution, target / f"{lab}.ipynb")
        (target / "timestamp.txt").write_text("2025-01-01 00:00:00.000000 UTC")
    assert release.exists()
    seconds, cpu = timed([nbgrader_bin, "autograde", lab, "--force"], cwd=course, env=env)
    scores = subprocess.run([python, "-c", (
        "from nbgrader.api import Gradebook\n"
        f"g = Gradebook('sqlite:///{course / 'gradebook.db'}')\n"
        f"a = g.find_assignment({lab!r})\n"
        f"print(sum(s.score for s in a.submissions) / (len(a.submissions) * a.max_score))")],
        capture_output=True, text=True, env=env, cwd=course)
    return seconds, cpu, float(scores.stdout.strip() or "nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    lab, solutions = default_lab()
    parser.add_argument("--lab", default=lab, help="lab to grade (default: %(default)s)")
    parser.add_argument("--solutions", type=Path, default=solutions, help="folder of solution labs (default: %(default)s)")
    parser.add_argument("--copies", type=int, default=8, help="submissions to grade (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=1,
                        help="rounds of every grader, taking turns (default: %(default)s)")
    parser.add_argument("--nbgrader-python", help="python of a separate venv with nbgrader installed")
    args = parser.parse_args()
    solution = args.solutions / args.lab / f"{args.lab}.ipynb"
    graders = [(1, False), (1, True), (2, True)] + ([None] if args.nbgrader_python else [])
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-grading-") as tmp:
        work = Path(tmp)
        submissions = work / "submissions"
        submissions.mkdir()
        for i in range(args.copies):
            shutil.copy(solution, submissions / f"s{i:02d}.ipynb")
        for repeat in range(args.repeats):
            for grader in graders[repeat % len(graders):] + graders[:repeat % len(graders)]:
                load = os.getloadavg()[0]
                if grader is None:
                    seconds, cpu, score = nbgrader(args.nbgrader_python, args.lab, solution, args.copies,
                                                   work / "nbgrader")
                    name = "nbgrader autograde"
                else:
                    jobs, sandbox = grader
                    out = work / f"out{jobs}{sandbox}"
                    seconds, cpu = ours(args.lab, args.solutions, submissions, out, jobs, sandbox)
                    summary = pd.read_csv(out / "summary.csv")
                    score = summary.score.sum() / summary.max_score.sum()
                    name = f"utils.grading --jobs {jobs}{'' if sandbox else ' --no-sandbox'}"
                rows.append({"grader": name, "seconds": seconds, "CPU s/submission": cpu / args.copies,
                             "score": score, "load": (load + os.getloadavg()[0]) / 2})
                print(rows[-1], flush=True)
    table = pd.DataFrame(rows).groupby("grader", sort=False).agg(
        seconds=("seconds", "median"), cpu=("CPU s/submission", "median"), score=("score", "min"),
        load=("load", "mean"), runs=("seconds", "size"))
    table["submissions/min"] = args.copies * 60 / table.seconds
    if args.nbgrader_python:
        table["vs nbgrader"] = table["submissions/min"] / table.loc["nbgrader autograde", "submissions/min"]
    print(f"\n{args.copies} copies of {solution.relative_to(ROOT)} on {os.cpu_count()} CPUs, median of {args.repeats} "
          "run(s) each, taking turns; load: mean 1-minute load average over the runs (score: fraction of the "
          "auto-graded points; written answers are read by a person)")
    print(table.rename(columns={"cpu": "CPU s/submission"}).round(2).to_string())
    if {"utils.grading --jobs 1", "utils.grading --jobs 1 --no-sandbox"} <= set(table.index):
        whole_run = (table.seconds["utils.grading --jobs 1"] - table.seconds["utils.grading --jobs 1 --no-sandbox"])
        print(f"\nthe sandbox's cost in a whole grading run (--jobs 1, with vs --no-sandbox): "
              f"{whole_run / args.copies:.2f} s per submission; bench/bench_sandbox.py measures one start and "
              "teardown on its own")


if __name__ == "__main__":
    main()
