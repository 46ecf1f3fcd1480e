"""The similarity report (utils/grading/similarity.py): planted copies among generated lab 1 submissions rank above
every pair of honest ones, what the lab gave everyone does not count, student text is escaped, and no grade
changes. The class generator is tests/similarity_class.py (pytest puts tests/ on the import path)."""

from __future__ import annotations

import csv
import io
import json
import os
import random
import re
import time
from pathlib import Path

import pytest

from similarity_class import Class, honest, make_class, write_class

from utils.grading import similarity
from utils.grading.cli import main
from utils.grading.gradebook import collect_submissions
from utils.grading.notebook import parse_lab
from utils.grading.scores import require_record
from utils.grading.similarity import (
    ALL_CODE,
    PAGE,
    SOURCES,
    TABLE,
    build_report,
    code_tokens,
    load_sources,
    render_report_page,
    write_report,
)

ROOT = Path(__file__).resolve().parents[1]
LABS, SOLUTIONS = ROOT / "labs", ROOT / "solutions"
WRITTEN = ("w1_min_freq", "w2_unseen_rows")
#: Seconds the report may take on 60 and on 200 submissions (book/labs.md states them).
LIMIT_60, LIMIT_200 = 15, 60


def _report(klass: Class, tmp_path: Path):
    """Write the class, run the report on it; (report, seconds the report took, CPU seconds it used)."""
    write_class(klass, tmp_path / "subs", tmp_path / "out")
    lab = parse_lab("lab1", SOLUTIONS / "lab1" / "lab1.ipynb")
    start, cpu = time.monotonic(), time.process_time()
    report = write_report(tmp_path / "out", collect_submissions([tmp_path / "subs"]), lab, LABS, SOLUTIONS)
    return report, time.monotonic() - start, time.process_time() - cpu


def _section(report, question: str):
    return next(s for s in report.sections if s.question == question)


def _assert_copies_first(report, klass: Class) -> None:
    """Over all code, and in each written question, the planted pairs are exactly the top ones."""
    planted = set(klass.planted)
    for question in (ALL_CODE, *WRITTEN):
        pairs = _section(report, question).pairs
        top = {(p.a, p.b) for p in pairs[:len(planted)]}
        assert top == planted, (question, [(p.a, p.b, round(p.score, 2)) for p in pairs[:len(planted) + 2]])
        assert pairs[len(planted)].score < pairs[len(planted) - 1].score  # a strict gap, not a tie broken by name
    for section in report.sections:
        if section.kind == "code" and section.question != ALL_CODE:  # short cells: honest pairs may be as close
            scores = {(p.a, p.b): p.score for p in section.pairs}
            assert all(scores.get(pair, 1.0) >= 0.85 for pair in planted), section.question


def test_planted_copies_rank_above_every_honest_pair(tmp_path, capsys):
    klass = make_class(60, 6)
    report, seconds, cpu = _report(klass, tmp_path)
    _assert_copies_first(report, klass)
    honest_best = _section(report, ALL_CODE).pairs[len(klass.planted)].score
    assert honest_best < 0.8  # the generator's honest students differ, as real ones do
    with capsys.disabled():
        print(f"\nsimilarity report, 60 submissions: {seconds:.2f} s ({cpu:.2f} s of CPU; load {os.getloadavg()[0]:.1f})")
    assert seconds < LIMIT_60


def test_two_hundred_submissions_scale(tmp_path, capsys):
    klass = make_class(200, 20, seed=1)
    report, seconds, cpu = _report(klass, tmp_path)
    _assert_copies_first(report, klass)
    with capsys.disabled():
        print(f"\nsimilarity report, 200 submissions: {seconds:.2f} s ({cpu:.2f} s of CPU; load {os.getloadavg()[0]:.1f})")
    assert seconds < LIMIT_200


def test_renames_reordering_comments_and_layout_do_not_hide_a_copy():
    one = "def f(xs):\n    total = 0  # sum\n    for x in xs:\n        total += x * 2\n    return total\n"
    two = "def g(values):\n  acc=0\n  for v in values:   # loop\n      acc += v*7\n  return acc\n"
    assert [t for t, *_ in code_tokens(one)] == [t for t, *_ in code_tokens(two)]
    assert "S" in [t for t, *_ in code_tokens('x = f"a{y}b" + "c"')]
    assert "doc" not in "".join(t for t, *_ in code_tokens('def f():\n    """doc"""\n    return 1\n'))


def test_the_stub_and_the_labs_code_do_not_make_pairs_alike(tmp_path):
    # Three students (too few for the class-wide filter) who filled the stubs with different approaches: only the
    # released lab's removal keeps the signatures, the constants and the lab's code from matching.
    rng = random.Random(5)
    students = {}
    for number in range(3):
        student = honest(rng)
        student.approach = {q: number for q in student.approach}
        students[f"s{number}"] = student
    klass = Class(students, [])
    report, *_ = _report(klass, tmp_path)
    kept = max(p.score for p in _section(report, ALL_CODE).pairs)
    sources = load_sources(tmp_path / "out")
    unfiltered = build_report(require_record(tmp_path / "out"), {**sources, "released": []})
    assert kept < 0.3 < max(p.score for p in _section(unfiltered, ALL_CODE).pairs)


HELPER = """

def show(table, ids):
    for i in ids:
        print(i, table.weight[i].tolist())
    print("rows:", table.num_embeddings, "dims:", table.embedding_dim, "padding:", table.padding_idx)
    return {i: table.weight[i].norm().item() for i in ids}
"""


def test_code_most_of_the_class_shares_is_not_a_copy(tmp_path):
    # Code from the lecture that every student pasted below each answer is everyone's, not evidence of copying.
    klass = make_class(12, 0, seed=6)
    write_class(klass, tmp_path / "subs", tmp_path / "out")
    for path in (tmp_path / "subs").glob("*.ipynb"):
        submission = json.loads(path.read_text(encoding="utf-8"))
        for cell in submission["cells"]:
            if cell.get("metadata", {}).get("nbgrader", {}).get("grade_id", "").startswith("q"):
                cell["source"] += HELPER
        path.write_text(json.dumps(submission), encoding="utf-8")
    lab = parse_lab("lab1", SOLUTIONS / "lab1" / "lab1.ipynb")
    report = write_report(tmp_path / "out", collect_submissions([tmp_path / "subs"]), lab, LABS, SOLUTIONS)
    assert _section(report, ALL_CODE).pairs[0].score < 0.7  # 0.8 if the shared helper counted
    assert all(s.common >= 5 for s in report.sections if s.kind == "code" and s.question != ALL_CODE)
    assert "fingerprints that more than half share left out" in (tmp_path / "out" / PAGE).read_text()


def test_unfilled_stubs_are_not_compared(tmp_path):
    klass = make_class(6, 0)
    write_class(klass, tmp_path / "subs", tmp_path / "out")
    for path in (tmp_path / "subs").glob("*.ipynb"):  # every student left lab 1's cells as released
        path.write_text((LABS / "lab1" / "lab1.ipynb").read_text(encoding="utf-8"), encoding="utf-8")
    lab = parse_lab("lab1", SOLUTIONS / "lab1" / "lab1.ipynb")
    report = write_report(tmp_path / "out", collect_submissions([tmp_path / "subs"]), lab, LABS, SOLUTIONS)
    assert all(not s.pairs for s in report.sections if s.kind == "code")


def test_student_text_is_escaped_and_the_page_loads_nothing(tmp_path):
    klass = make_class(8, 1, seed=3)
    a, b = klass.planted[0]
    attack = '<script>alert("x")</script><img src="http://example.com/x.png"> '
    for name in (a, b):
        klass.students[name].text["w1_min_freq"] = attack + klass.students[a].text["w1_min_freq"]
    write_class(klass, tmp_path / "subs", tmp_path / "out")
    path = tmp_path / "subs" / f"{a}.ipynb"
    submission = json.loads(path.read_text(encoding="utf-8"))
    cell = next(c for c in submission["cells"] if c.get("metadata", {}).get("nbgrader", {}).get("grade_id")
                == "q1_build_vocab")
    cell["source"] += '\nprint("</pre><script>x</script>")\n'
    path.write_text(json.dumps(submission), encoding="utf-8")
    lab = parse_lab("lab1", SOLUTIONS / "lab1" / "lab1.ipynb")
    write_report(tmp_path / "out", collect_submissions([tmp_path / "subs"]), lab, LABS, SOLUTIONS)
    page = render_report_page(tmp_path / "out")
    assert page == (tmp_path / "out" / PAGE).read_text(encoding="utf-8")
    assert "<script" not in page.lower() and "<img" not in page.lower()
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert "&lt;/pre&gt;&lt;script&gt;x&lt;/script&gt;" in page
    assert not re.search(r"<[^>]*\s(src|href)=\"(?!#)|url\(|@import|<link|<iframe|<object", page)  # fetches nothing
    assert "<mark>" in page  # the shared parts are marked


def test_cli_writes_the_report_and_changes_no_grade(tmp_path, capsys):
    klass = make_class(12, 2, seed=2)
    write_class(klass, tmp_path / "subs", tmp_path / "out")
    out = tmp_path / "out"
    grades = {name: (out / name).read_bytes() for name in ("grading.json", "written.csv", "grades.csv", "summary.csv")}
    argv = ["similarity", str(out), str(tmp_path / "subs"), "--solutions", str(SOLUTIONS), "--labs", str(LABS)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    first = klass.planted[0]
    assert f"{first[0]}  {first[1]}" in printed or f"{klass.planted[1][0]}  {klass.planted[1][1]}" in printed
    assert "no grade was changed" in printed
    rows = list(csv.DictReader(io.StringIO((out / TABLE).read_text(encoding="utf-8"))))
    assert list(rows[0]) == ["question", "submission_a", "submission_b", "score", "rank"]
    top = {(r["submission_a"], r["submission_b"]) for r in rows if r["question"] == ALL_CODE and int(r["rank"]) <= 2}
    assert top == set(klass.planted)
    assert {name: (out / name).read_bytes() for name in grades} == grades

    # Later, without the submissions: the code kept in similarity.json is used; a file that is gone is named.
    (tmp_path / "subs" / f"{first[0]}.ipynb").unlink()
    assert main(["similarity", str(out)]) == 0
    assert (out / PAGE).read_text(encoding="utf-8") == render_report_page(out)
    assert main(argv) == 0
    assert f"{first[0]}: code not compared: no file of this name" in capsys.readouterr().err
    assert first[0] not in {n for answers in load_sources(out)["code"].values() for n in answers}
    assert {name: (out / name).read_bytes() for name in grades} == grades

    # The folder graded again, with one more submission, after the code was read: the page says so.
    record = require_record(out)
    record.results["newcomer"] = record.results[klass.planted[1][0]]
    record.save(out)
    later = (out / SOURCES).stat().st_mtime + 1
    os.utime(out / "grading.json", (later, later))  # file times may be as coarse as a clock tick
    page = render_report_page(out)
    assert "graded again after the code was read" in page
    assert "newcomer: code not compared: graded after `similarity` read the submissions" in page


def test_a_huge_answer_is_cut_and_a_file_not_graded_is_named(tmp_path):
    klass = make_class(6, 1, seed=7)
    a, b = klass.planted[0]
    klass.students[a].text["w2_unseen_rows"] += " padding" * 5000
    write_class(klass, tmp_path / "subs", tmp_path / "out")
    (tmp_path / "subs" / "latecomer.ipynb").write_text((tmp_path / "subs" / f"{b}.ipynb").read_text())
    lab = parse_lab("lab1", SOLUTIONS / "lab1" / "lab1.ipynb")
    report = write_report(tmp_path / "out", collect_submissions([tmp_path / "subs"]), lab, LABS, SOLUTIONS)
    assert f"{a} w2_unseen_rows: only the first {similarity.MAX_ANSWER:,} of" in " ".join(report.notes)
    assert "latecomer: code not compared: given, but not graded into this folder" in report.notes
    assert len(render_report_page(tmp_path / "out")) < 20 * similarity.MAX_ANSWER


def test_without_the_code_only_written_answers_are_compared(tmp_path):
    klass = make_class(10, 1, seed=4)
    write_class(klass, tmp_path / "subs", tmp_path / "out")
    page = render_report_page(tmp_path / "out")
    assert not (tmp_path / "out" / SOURCES).exists()
    assert "Only the written answers were compared" in page
    assert "All code cells together" not in page
    assert main(["similarity", str(tmp_path / "nowhere")]) == 2


def test_the_labs_page_states_what_the_code_does():
    page = " ".join((ROOT / "book" / "labs.md").read_text(encoding="utf-8").split())
    assert "### Answers that look copied" in page
    assert similarity.COMMON_SHARE == 0.5 and "more than half of the class share" in page
    assert f"require under {LIMIT_60} and {LIMIT_200} seconds" in page


@pytest.mark.parametrize("broken", ["def f(:\n    return [", "x = '''never closed\n", "\tif x:\n  y\n"])
def test_code_that_does_not_parse_keeps_its_tokens(broken):
    assert code_tokens(broken)  # no exception; what could be read is compared
