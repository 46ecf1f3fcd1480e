"""`python -m utils.grading`: release the labs and grade submissions."""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import sys
import textwrap
import time
from pathlib import Path

from utils.grading.gradebook import Gradebook, UsageError, atomic_write, summary_table
from utils.grading.grader import STATUSES, Options
from utils.grading.intake import submissions_to_grade
from utils.grading.lms import (ID_PRESETS, Policy, compile_id_pattern, export_gradebook, merge_outputs, parse_due,
                               student_id)
from utils.grading.notebook import LabError, find_labs, parse_lab
from utils.grading.release import release_all
from utils.grading.sandbox import SandboxUnavailable, check_sandbox
from utils.grading.shard import parse_shard, select
#: Exit statuses of `grade` besides 0 (graded, whatever the scores) and 2 (usage error).
EXIT_GRADER_ERROR, EXIT_NO_SANDBOX, EXIT_INTERRUPTED = 3, 4, 130
NO_SANDBOX_WARNING = (
    "warning: --no-sandbox: the submissions' code runs as your user, unconfined: it can read every file you can "
    "(solutions/ with the hidden tests, other students' submissions), change the output folder, use the network "
    "and leave processes running after grading. Only the time, memory and output limits remain. Use it only for "
    "notebooks you trust.")
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


def _shard(text: str):
    """An argparse type for K/N."""
    try:
        return parse_shard(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _version() -> str:
    """The installed package's version (the grader's, for bug reports and for matching shards' graders)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("embeddings-course-utils")
    except PackageNotFoundError:
        return "unknown (not installed: pip install -e .)"


def _paragraphs(*texts: str) -> str:
    """Help text: each paragraph wrapped to 78 columns."""
    return "\n\n".join(textwrap.fill(text, 78) for text in texts)


def build_parser() -> argparse.ArgumentParser:
    """The command line: `release`, `grade`, `merge`, `export` and `review`."""
    parser = argparse.ArgumentParser(
        prog="python -m utils.grading",
        description="Release the course labs (solutions/ -> labs/) and grade students' lab notebooks.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    release = commands.add_parser(
        "release", help="write labs/<lab>/<lab>.ipynb from solutions/<lab>/<lab>.ipynb",
        description="Write the student version of each lab: solutions become `raise NotImplementedError(hint)` "
                    "stubs, written answers become 'YOUR ANSWER HERE', hidden tests are removed, outputs cleared. "
                    "The result is byte-identical for the same input.")
    release.add_argument("labs", nargs="*", metavar="LAB", help="labs to release (default: all)")
    release.add_argument("--check", action="store_true",
                         help="write nothing; exit 1 and name the files in labs/ that are missing or stale")
    release.add_argument("--solutions", type=Path, default=Path("solutions"), help="folder of solution labs (default: %(default)s)")
    release.add_argument("--out", type=Path, default=Path("labs"), help="folder of released labs (default: %(default)s)")

    grade = commands.add_parser(
        "grade", help="grade submissions of one lab into a folder of CSV files and feedback pages",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=_paragraphs(
            "Grade student notebooks of one lab. Each submission's code runs in its own sandbox, with a memory "
            "limit and a per-cell time limit; the tests run in a separate trusted process and reach the "
            "student's code only through data. Only the student's solution cells and written answers are taken "
            "from the submission; all tests come from solutions/.",
            "Writes OUT/summary.csv, OUT/grades.csv, OUT/written.csv (written answers to score: the file you "
            "edit, read as CSV UTF-8; every score in it is kept by later runs), OUT/feedback/<submission>.html, "
            "the record OUT/grading.json and a cache in OUT/.cache (unchanged submissions are not graded "
            "again). The outputs describe every submission ever graded into OUT; one listed but not graded yet "
            "(an interrupted run) has the status not-graded. Each submission's code runs in a bubblewrap sandbox (Debian package bubblewrap): "
            "it sees only its own folder, the Python installation and the course library, has no network, and "
            "all its processes are killed when its turn ends."),
        epilog="statuses:\n" + "\n".join(f"  {k:<17} {v}" for k, v in STATUSES.items()) + "\n\nexit status:\n"
               "  0    grading completed, whatever the scores\n"
               "  2    usage error (unknown lab, no submissions, bad option)\n"
               f"  {EXIT_GRADER_ERROR}    the grader itself failed on some submission (status grader-error, score left "
               "empty): grade them again\n"
               f"  {EXIT_NO_SANDBOX}    no sandbox: install bubblewrap, or pass --no-sandbox\n"
               f"  {EXIT_INTERRUPTED}  interrupted (Ctrl-C); what was graded is saved")
    grade.add_argument("submissions", nargs="+", type=Path, metavar="SUBMISSION",
                       help=".ipynb files, folders searched recursively for .ipynb files, or the .zip archive of "
                            "Canvas's Download Submissions or Moodle's Download all submissions (one notebook per "
                            "student)")
    grade.add_argument("--lab", required=True, help="the lab to grade, e.g. lab1")
    grade.add_argument("--out", required=True, type=Path, help="output folder (created if needed)")
    grade.add_argument("--solutions", type=Path, default=Path("solutions"), help="folder of solution labs (default: %(default)s)")
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
    grade.add_argument("--no-sandbox", action="store_true",
                       help="run the submissions' code without the bubblewrap sandbox (unsafe: it can read the "
                            "solutions and other submissions; for trusted notebooks only)")
    grade.add_argument("--id-pattern", metavar="REGEX",
                       help="take each student's id from the submission's name (its path without .ipynb) into "
                            "summary.csv's id column: a regular expression with a group named id, or a preset: "
                            + ", ".join(f"{k} ({v})" for k, v in ID_PRESETS.items()))
    grade.add_argument("--shard", type=_shard, metavar="K/N",
                       help="grade only shard K of N (1 <= K <= N): a fixed part of the submissions chosen by a hash "
                            "of their names; grade every shard into its own --out and combine them with `merge`")

    merge = commands.add_parser(
        "merge", help="combine the shards' output folders into the folder one run would have written",
        description=_paragraphs(
            "Combine the --out folders of `grade` (the shards of one class, or runs on different submissions) "
            "into one: the same files, in the same order, that one run over the whole class writes, with every "
            "score entered in the folders' written.csv files (and in OUT's own, if it exists) and feedback pages "
            "made from the merged scores. Refused: shards of different labs, splits, submission lists, options "
            "or grader versions (--allow-mismatch), a missing or repeated shard, a submission in two folders. "
            "OUT may be one of the folders: `merge --out F F` rewrites F's files from its record and written.csv."),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    merge.add_argument("folders", nargs="+", type=Path, metavar="FOLDER", help="grading output folders")
    merge.add_argument("--out", required=True, type=Path, help="merged output folder (created if needed)")
    merge.add_argument("--allow-mismatch", action="store_true",
                       help="merge shards graded from different submission lists or with different options or "
                            "grader versions (refused by default); students no shard graded are listed as not-graded")

    export = commands.add_parser(
        "export", help="write a gradebook CSV that Canvas or Moodle imports as it is",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=_paragraphs(
            "Fill the lab's column of the gradebook file your LMS exported (the roster) from a grading output "
            "folder, matching students by the id that `grade --id-pattern` took from the file names, with the "
            "scores entered in written.csv. Nothing is written when the folder is partial (--partial), a written "
            "answer has no score (--unscored-zero), written.csv has rows to check (--ignore-checks) or the LMS's "
            "maximum differs from the lab's (--scale). A value the roster had is never blanked and a column "
            "never added.",
            "canvas: the roster is the Gradebook's export (Export Entire Gradebook); students are matched on its "
            "ID column (--id-pattern canvas); the lab's column is the one roster column whose name starts with "
            "the lab (e.g. 'Lab 1 (1234)') or --column; its Points Possible is the maximum. Import it with "
            "Gradebook > Import.",
            "moodle: the roster is the assignment's grading worksheet (View all submissions > Download grading "
            "worksheet); students are matched on its Identifier, 'Participant N' (--id-pattern moodle), and each "
            "row's Maximum Grade is the maximum. Import it with Upload grading worksheet."))
    export.add_argument("folder", type=Path, metavar="FOLDER", help="a grading output folder (after `merge`, if sharded)")
    export.add_argument("--format", required=True, choices=["canvas", "moodle"], help="the LMS")
    export.add_argument("--roster", required=True, type=Path, help="the gradebook CSV exported by the LMS")
    export.add_argument("--column", help="canvas: the roster's assignment column to fill (default: the one column "
                                         "named like the lab; a column is never added)")
    export.add_argument("--scale", action="store_true",
                        help="convert scores to the LMS's maximum when it differs from the lab's (refused by default)")
    export.add_argument("--partial", action="store_true",
                        help="export although some submissions are not graded or the grader failed on them (their "
                             "roster values are kept)")
    export.add_argument("--unscored-zero", action="store_true",
                        help="count written answers nobody scored as 0 (refused by default; each is named)")
    export.add_argument("--ignore-checks", action="store_true",
                        help="export although written.csv has rows flagged in its check column")
    export.add_argument("--due", metavar="'YYYY-MM-DD HH:MM'",
                        help="moodle: mark as late the submissions whose 'Last modified (submission)' is later "
                             "(summary.csv's late column; Canvas marks late files _LATE_ itself)")
    export.add_argument("--out", type=Path, help="the file to write (default: FOLDER/<format>-<lab>.csv)")
    export.add_argument("--skip-unknown", action="store_true",
                        help="leave out submissions whose id is not in the roster instead of stopping")
    review = commands.add_parser(
        "review", help="score the written answers question by question in your browser",
        description=_paragraphs(
            "Open a page in your browser for scoring the written answers of a grading output folder, one question "
            "at a time: the question and the model answer from solutions/ beside each answer, identical answers "
            "grouped and scored once, a rubric of items with points applied by number keys, a comment for the "
            "student's feedback page. Every change is saved at once into OUT/written.csv (and the rubric into "
            "OUT/rubric.json), and grades.csv, summary.csv and the feedback pages are rewritten. The page is served "
            "on 127.0.0.1 only, at an address holding a random token; stop it with Ctrl-C."))
    review.add_argument("folder", type=Path, metavar="OUT", help="a grading output folder (the --out of `grade`)")
    review.add_argument("--solutions", type=Path, default=Path("solutions"),
                        help="folder of solution labs, for the questions and model answers (default: %(default)s)")
    review.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    review.add_argument("--no-browser", action="store_true", help="print the address without opening a browser")
    _add_similarity(commands)
    return parser


def _add_similarity(commands) -> None:
    """The `similarity` subcommand's arguments."""
    similarity = commands.add_parser(
        "similarity", help="rank the pairs of submissions whose answers look alike (changes no grade)",
        description=_paragraphs(
            "For each question of a graded lab, rank the pairs of submissions whose answer code or written text "
            "is closest, leaving out what the released lab gave everyone (stubs, its own code, hints) and code "
            "most of the class shares. Code is compared on tokens with names and literals replaced by their kind "
            "(winnowed fingerprints, as MOSS does), written answers with rapidfuzz.",
            "Writes OUT/similarity.html (the pairs side by side, the shared parts marked), OUT/similarity.csv "
            "(question, submissions, score, rank; the question 'all code' ranks all code cells together) and "
            "OUT/similarity.json (the code read from the submissions, which the review page's tab shows). Only "
            "reads the grades. The folder keeps the written answers but not the code: give the submissions that "
            "were graded (the same arguments as `grade`) to compare the code; without them, the code kept by an "
            "earlier run is used, or only the written answers."),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    similarity.add_argument("folder", type=Path, metavar="OUT", help="a grading output folder")
    similarity.add_argument("submissions", nargs="*", type=Path, metavar="SUBMISSION",
                            help="the notebooks, folders or LMS archives that were graded into OUT")
    similarity.add_argument("--solutions", type=Path, default=Path("solutions"),
                            help="folder of solution labs (default: %(default)s)")
    similarity.add_argument("--labs", type=Path, default=Path("labs"),
                            help="folder of released labs, whose stubs and code are left out (default: %(default)s)")
    similarity.add_argument("--top", type=_positive(int), default=3, help="pairs printed per question (default: 3)")


def _similarity(args: argparse.Namespace) -> int:
    """The similarity subcommand."""
    from utils.grading.scores import require_record
    from utils.grading.similarity import PAGE, TABLE, write_report

    out = args.folder
    lab, submissions = None, None
    if args.submissions:
        record = require_record(out)
        labs = find_labs(_solutions_folder(args.solutions))
        if record.lab not in labs:
            raise UsageError(f"{out} holds {record.lab}, which {args.solutions} does not have")
        lab = parse_lab(record.lab, labs[record.lab])
        submissions = submissions_to_grade(args.submissions, lab.name)
    report = write_report(out, submissions, lab, args.labs, args.solutions)
    for note in report.notes:
        print(f"note: {note}", file=sys.stderr)
    for section in report.sections:
        print(f"{section.title}: {section.compared} answers")
        for pair in section.pairs[:args.top]:
            print(f"  {pair.rank}. {pair.score:4.0%}  {pair.a}  {pair.b}")
    print(f"wrote {out / PAGE} and {out / TABLE}; no grade was changed")
    return 0


def _solutions_folder(path: Path) -> Path:
    """The solutions folder, which must exist (paths default to the current folder: the course repository)."""
    if not path.is_dir():
        raise UsageError(f"no solutions folder {path}: run this in the course repository or pass --solutions")
    return path


def _release(args: argparse.Namespace) -> int:
    """The release subcommand."""
    _solutions_folder(args.solutions)
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
    labs = find_labs(_solutions_folder(args.solutions))
    if args.lab not in labs:
        raise UsageError(f"unknown lab {args.lab!r}: {args.solutions} has " + (", ".join(labs) or "no labs"))
    lab = parse_lab(args.lab, labs[args.lab])
    submissions = submissions_to_grade(args.submissions, lab.name)
    if not submissions:
        raise UsageError("no submissions: the folders given contain no .ipynb files")
    if args.id_pattern:
        pattern = compile_id_pattern(args.id_pattern)
        submissions = [dataclasses.replace(s, id=student_id(s.name, pattern)) for s in submissions]
        unmatched = [s.name for s in submissions if not s.id]
        if unmatched:
            print(f"warning: {len(unmatched)} submission name(s) do not match --id-pattern, e.g. {unmatched[0]!r}: "
                  f"their id stays empty", file=sys.stderr)
    classlist = [s.name for s in submissions]
    if args.shard:
        submissions = select(submissions, args.shard)
    out = args.out.resolve()
    options = Options(timeout=args.timeout, memory=args.memory, output_limit=args.output_limit)
    start = time.monotonic()
    if args.no_sandbox:
        print(NO_SANDBOX_WARNING, file=sys.stderr)
    else:
        try:
            sandbox = check_sandbox()
        except SandboxUnavailable as error:
            print(f"error: {error}", file=sys.stderr)
            return EXIT_NO_SANDBOX
        if not args.quiet:
            print(f"sandbox: {sandbox}")
    gradebook = Gradebook(lab, out, options, jobs=args.jobs, force=args.force, progress=not args.quiet,
                          sandbox=not args.no_sandbox)
    gradebook.prepare(submissions, classlist, str(args.shard) if args.shard else None)
    try:
        results = gradebook.run(submissions)
        if not submissions:  # an empty shard still leaves outputs for `merge`
            gradebook.write_outputs([], {}, [])
    except KeyboardInterrupt:
        print("\ninterrupted: what was graded is saved; run the same command again to grade the rest.", file=sys.stderr)
        return EXIT_INTERRUPTED
    if not args.quiet:
        print(summary_table(submissions, results))
        print(f"graded in {time.monotonic() - start:.1f} s; results in {out}/grades.csv, summary.csv, feedback/")
    _tell(gradebook.report, out)
    failed = [name for name, result in results.items() if result["status"] == "grader-error"]
    if failed:
        print(f"error: the grader failed on {len(failed)} submission(s), e.g. {failed[0]!r}: their score is left "
              "empty (see the message in grades.csv); fix the cause and run the same command again.", file=sys.stderr)
        return EXIT_GRADER_ERROR
    return 0


def _tell(report, out: Path) -> None:
    """Tell the instructor what in the folder needs them (on stderr, each kind with what to do)."""
    if report is None:
        return
    lines = [(report.missing, "listed but not graded yet (run `grade` again)"),
             (report.unmatched, "written.csv rows that match no graded answer (kept, see their check cell)"),
             (report.changed, "scored answers that changed since they were scored (see the check cell)"),
             (report.page_errors, "feedback pages that could not be written (see summary.csv's message)"),
             (report.unscored, "written answers to score in written.csv")]
    for items, what in lines:
        if items:
            print(f"note: {len(items)} {what}: {', '.join(items[:5])}{' ...' if len(items) > 5 else ''}",
                  file=sys.stderr)
    if report.missing:
        print(f"note: {out} is partial: `export` refuses it until every listed submission is graded", file=sys.stderr)


def _merge(args: argparse.Namespace) -> int:
    """The merge subcommand."""
    counts = merge_outputs(args.folders, args.out, allow_mismatch=args.allow_mismatch)
    for conflict in counts["conflicts"]:
        print(f"note: two written.csv files differ on {conflict}", file=sys.stderr)
    print(f"merged {counts['folders']} folder(s), {counts['submissions']} submissions, "
          f"{counts['written scores']} score(s) entered by a person, into {args.out}/")
    _tell(counts["report"], args.out)
    return 0


def _export(args: argparse.Namespace) -> int:
    """The export subcommand."""
    policy = Policy(column=args.column, scale=args.scale, partial=args.partial, unscored_zero=args.unscored_zero,
                    ignore_checks=args.ignore_checks, due=parse_due(args.due) if args.due else None)
    export = export_gradebook(args.folder, args.format, args.roster, policy)
    if export.not_in_roster and not args.skip_unknown:
        raise UsageError(f"{len(export.not_in_roster)} student id(s) graded but not in the roster: "
                         f"{', '.join(export.not_in_roster[:10])}. Check --id-pattern and the roster, or pass "
                         f"--skip-unknown to leave them out")
    out = args.out or args.folder / f"{args.format}-{export.lab}.csv"
    atomic_write(out, export.text())
    for note in export.notes:
        print(f"note: {note}")
    print(f"wrote {out}: {export.matched} student(s) graded, {len(export.without_submission)} without a submission "
          f"(their roster values kept), {len(export.not_in_roster)} id(s) not in the roster")
    return 0


def _review(args: argparse.Namespace) -> int:
    """The review subcommand: serve the review page until Ctrl-C."""
    import webbrowser

    from utils.grading.review import ReviewServer

    if not args.solutions.is_dir():
        print(f"warning: no solutions folder {args.solutions}: the page shows no question texts or model answers "
              f"(pass --solutions)", file=sys.stderr)
    server = ReviewServer(args.folder, args.solutions, args.port)
    print(f"Review page for {args.folder}: {server.url}\n(only this address opens it; Ctrl-C stops the server)",
          flush=True)
    if not args.no_browser:
        webbrowser.open(server.url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("\nstopped; every score entered is saved.", file=sys.stderr)
    finally:
        server.server_close()
    return 0


COMMANDS = {"release": _release, "grade": _grade, "merge": _merge, "export": _export, "review": _review,
            "similarity": _similarity}


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except (UsageError, LabError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except PermissionError as error:  # e.g. a TA running merge on the instructor's folder
        print(f"error: permission denied: {error.filename}: ask the folder's owner to give your group access "
              f"(chmod -R g+rwX FOLDER), or write to a folder of your own with --out", file=sys.stderr)
        return 2
