"""`python -m utils.grading`: release the labs and grade submissions."""

from __future__ import annotations

import argparse
import os
import re
import sys
import textwrap
import time
from pathlib import Path

from utils.grading.gradebook import Gradebook, UsageError, collect_submissions, summary_table
from utils.grading.grader import STATUSES, Options
from utils.grading.notebook import LabError, find_labs, parse_lab
from utils.grading.release import release_all

REPOSITORY = Path(__file__).resolve().parents[2]
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$", re.IGNORECASE)


def parse_size(text: str) -> int:
    """'2G', '512M', '1.5GiB', '1000000' -> bytes (binary units); '0' means no limit."""
    match = _SIZE.match(text)
    if not match:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (examples: 2G, 512M, 0 for no limit)")
    number, unit = match.groups()
    return int(float(number) * 1024 ** ("kmgt".index(unit.lower()) + 1 if unit else 0))


def _positive(kind: type):
    """An argparse type for positive numbers of `kind`."""
    def convert(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
        return value
    return convert


def _paragraphs(*texts: str) -> str:
    """Help text: each paragraph wrapped to 78 columns."""
    return "\n\n".join(textwrap.fill(text, 78) for text in texts)


def build_parser() -> argparse.ArgumentParser:
    """The command line: `release` and `grade`."""
    parser = argparse.ArgumentParser(
        prog="python -m utils.grading",
        description="Release the course labs (solutions/ -> labs/) and grade students' lab notebooks.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    release = commands.add_parser(
        "release", help="write labs/<lab>/<lab>.ipynb from solutions/<lab>/<lab>.ipynb",
        description="Write the student version of each lab: solutions become `raise NotImplementedError(hint)` "
                    "stubs, written answers become 'YOUR ANSWER HERE', hidden tests are removed, outputs cleared. "
                    "The result is byte-identical for the same input.")
    release.add_argument("labs", nargs="*", metavar="LAB", help="labs to release (default: all)")
    release.add_argument("--check", action="store_true",
                         help="write nothing; exit 1 and name the files in labs/ that are missing or stale")
    release.add_argument("--solutions", type=Path, default=REPOSITORY / "solutions", help="folder of solution labs (default: %(default)s)")
    release.add_argument("--out", type=Path, default=REPOSITORY / "labs", help="folder of released labs (default: %(default)s)")

    grade = commands.add_parser(
        "grade", help="grade submissions of one lab into a folder of CSV files and feedback pages",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=_paragraphs(
            "Grade student notebooks of one lab. Each submission runs in its own fresh kernel, in an empty "
            "temporary folder, with a memory limit and a per-cell time limit. Only the student's solution "
            "cells and written answers are taken from the submission; all tests come from solutions/.",
            "Writes OUT/grades.csv, OUT/summary.csv, OUT/written.csv (written answers to read), "
            "OUT/feedback/<submission>.html and a cache in OUT/.cache (unchanged submissions are not "
            "graded again). Exit status 0 when grading completed, whatever the scores; 2 for usage errors."),
        epilog="statuses:\n" + "\n".join(f"  {k:<17} {v}" for k, v in STATUSES.items()))
    grade.add_argument("submissions", nargs="+", type=Path, metavar="SUBMISSION",
                       help=".ipynb files, or folders searched recursively for .ipynb files")
    grade.add_argument("--lab", required=True, help="the lab to grade, e.g. lab1")
    grade.add_argument("--out", required=True, type=Path, help="output folder (created if needed)")
    grade.add_argument("--solutions", type=Path, default=REPOSITORY / "solutions", help="folder of solution labs (default: %(default)s)")
    grade.add_argument("--jobs", "-j", type=_positive(int), default=os.cpu_count() or 1,
                       help="submissions graded in parallel (default: the number of CPUs, %(default)s)")
    grade.add_argument("--timeout", type=_positive(float), default=Options.timeout,
                       help="seconds one cell may run (default: %(default)g)")
    grade.add_argument("--memory", type=parse_size, default=Options.memory,
                       help="memory limit of each kernel, e.g. 2G, 512M; 0 for none (default: 2G)")
    grade.add_argument("--output-limit", type=parse_size, default=Options.output_limit,
                       help="characters of output one cell may print; the rest is dropped (default: 1M)")
    grade.add_argument("--force", action="store_true", help="grade every submission again, ignoring the cache")
    grade.add_argument("--quiet", "-q", action="store_true", help="no progress bar and no summary table")
    return parser


def _release(args: argparse.Namespace) -> int:
    """The release subcommand."""
    result = release_all(args.solutions, args.out, args.labs or None, check=args.check)
    if args.check:
        for problem in result:
            print(problem, file=sys.stderr)
        if result:
            print(f"{len(result)} released lab file(s) out of date: run `make release` and commit labs/.", file=sys.stderr)
            return 1
        print(f"{args.out} is in sync with {args.solutions} ({len(find_labs(args.solutions))} labs).")
        return 0
    for path in result:
        print(f"wrote {path}")
    print(f"{len(find_labs(args.solutions))} labs released, {len(result)} file(s) changed.")
    return 0


def _grade(args: argparse.Namespace) -> int:
    """The grade subcommand."""
    labs = find_labs(args.solutions)
    if args.lab not in labs:
        raise UsageError(f"unknown lab {args.lab!r}: {args.solutions} has " + (", ".join(labs) or "no labs"))
    lab = parse_lab(args.lab, labs[args.lab])
    submissions = collect_submissions(args.submissions)
    if not submissions:
        raise UsageError("no submissions: the folders given contain no .ipynb files")
    out = args.out.resolve()
    options = Options(timeout=args.timeout, memory=args.memory, output_limit=args.output_limit)
    start = time.monotonic()
    gradebook = Gradebook(lab, out, options, jobs=args.jobs, force=args.force, progress=not args.quiet)
    try:
        results = gradebook.run(submissions)
    except KeyboardInterrupt:
        print("\ninterrupted: what was graded is saved; run the same command again to grade the rest.", file=sys.stderr)
        return 130
    if not args.quiet:
        print(summary_table(submissions, results))
        print(f"graded in {time.monotonic() - start:.1f} s; results in {out}/grades.csv, summary.csv, feedback/")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return _release(args) if args.command == "release" else _grade(args)
    except (UsageError, LabError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
