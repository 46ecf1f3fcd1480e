"""Grading throughput: our grader with --jobs 1 and --jobs 2 against `nbgrader autograde`, on N copies of a lab,
and what the sandbox costs per submission.

    python bench/bench_grading.py [--lab lab1] [--copies 8] [--nbgrader-python /path/to/venv/bin/python]

The sandbox's cost shows as the difference between a whole grading run with and without `--no-sandbox`
(bench/bench_sandbox.py measures one start and teardown on its own).

nbgrader is not a dependency of the course. To include it, install it into a separate virtual environment
(`python3.11 -m venv /tmp/nbgrader-venv && /tmp/nbgrader-venv/bin/pip install nbgrader`) and pass that
interpreter with --nbgrader-python. Its kernels run this environment's Python (a kernelspec on JUPYTER_PATH),
so both graders execute the same notebooks with the same libraries.
"""

from __future__ import annotations

import argparse
import json
import os
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


def timed(command: list[str], **kwargs) -> float:
    """Run a command (failing loudly) and return its wall time in seconds."""
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, **kwargs)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"command failed ({result.returncode}): {' '.join(command)}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return seconds


def ours(lab: str, solutions: Path, submissions: Path, out: Path, jobs: int, sandbox: bool = True) -> float:
    """Seconds for our grader to grade every submission (cache ignored)."""
    return timed([sys.executable, "-m", "utils.grading", "grade", "--lab", lab, "--solutions", str(solutions),
                  "--out", str(out), "--jobs", str(jobs), "--force", "--quiet", *([] if sandbox else ["--no-sandbox"]),
                  str(submissions)], cwd=ROOT)


def nbgrader(python: str, lab: str, solution: Path, copies: int, work: Path) -> tuple[float, float]:
    """(seconds, mean score fraction) for `nbgrader autograde` on the same submissions, in a fresh course folder."""
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
    seconds = timed([nbgrader_bin, "autograde", lab, "--force"], cwd=course, env=env)
    scores = subprocess.run([python, "-c", (
        "from nbgrader.api import Gradebook\n"
        f"g = Gradebook('sqlite:///{course / 'gradebook.db'}')\n"
        f"a = g.find_assignment({lab!r})\n"
        f"print(sum(s.score for s in a.submissions) / (len(a.submissions) * a.max_score))")],
        capture_output=True, text=True, env=env, cwd=course)
    return seconds, float(scores.stdout.strip() or "nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    lab, solutions = default_lab()
    parser.add_argument("--lab", default=lab, help="lab to grade (default: %(default)s)")
    parser.add_argument("--solutions", type=Path, default=solutions, help="folder of solution labs (default: %(default)s)")
    parser.add_argument("--copies", type=int, default=8, help="submissions to grade (default: %(default)s)")
    parser.add_argument("--nbgrader-python", help="python of a separate venv with nbgrader installed")
    args = parser.parse_args()
    solution = args.solutions / args.lab / f"{args.lab}.ipynb"
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-grading-") as tmp:
        work = Path(tmp)
        submissions = work / "submissions"
        submissions.mkdir()
        for i in range(args.copies):
            shutil.copy(solution, submissions / f"s{i:02d}.ipynb")
        for jobs, sandbox in ((1, False), (1, True), (2, True)):
            out = work / f"out{jobs}{sandbox}"
            seconds = ours(args.lab, args.solutions, submissions, out, jobs, sandbox)
            summary = pd.read_csv(out / "summary.csv")
            rows.append({"grader": f"utils.grading --jobs {jobs}{'' if sandbox else ' --no-sandbox'}",
                         "seconds": seconds, "score": summary.score.sum() / summary.max_score.sum()})
            print(rows[-1], flush=True)
        if args.nbgrader_python:
            seconds, score = nbgrader(args.nbgrader_python, args.lab, solution, args.copies, work / "nbgrader")
            rows.append({"grader": "nbgrader autograde", "seconds": seconds, "score": score})
    table = pd.DataFrame(rows)
    table["submissions/min"] = args.copies * 60 / table.seconds
    table["speed-up vs nbgrader"] = (table["submissions/min"] / table["submissions/min"].iloc[-1]
                                     if args.nbgrader_python else float("nan"))
    print(f"{args.copies} copies of {solution.relative_to(ROOT)} on {os.cpu_count()} CPUs "
          "(score: fraction of the auto-graded points; written answers are read by a person)")
    print(table.round(2).to_string(index=False))
    whole_run = (table.seconds.iloc[1] - table.seconds.iloc[0]) / args.copies
    print(f"\nthe sandbox's cost in a whole grading run (--jobs 1, with vs --no-sandbox): {whole_run:.2f} s per "
          "submission; bench/bench_sandbox.py measures one start and teardown on its own")


if __name__ == "__main__":
    main()
