"""Answers that look copied: for each question of a graded lab, the pairs of submissions whose answer code or
written text is unusually close, ranked, for a person to read. It never changes a grade.

Code is compared as MOSS and JPlag do it: the answer is cut into tokens (Python's own tokenizer) with every
identifier and literal replaced by its kind and comments dropped, so renamed variables and reformatted code still
match; k-grams of tokens are hashed and winnowed into a set of fingerprints (a set, so reordered functions match
too). Fingerprints of the released lab (its stubs, its own code, its hints) are removed, and so are those that
more than half of the class share. A pair's score is the share of the smaller answer's fingerprints found in the
other. Written answers are compared with rapidfuzz's normalised Indel similarity (`fuzz.ratio`).

The folder's record holds the written answers but not the code: `course-grading similarity OUT SUBMISSION...`
reads the answer cells from the submissions and keeps them in OUT/similarity.json, which this page reads later.
"""

from __future__ import annotations

import builtins
import hashlib
import html
import io
import json
import keyword
import tokenize
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Any

from rapidfuzz import fuzz
from rapidfuzz.distance import Indel

from utils.grading.gradebook import Submission
from utils.grading.notebook import Lab, cell_source, read_notebook
from utils.grading.scores import RECORD, Record, UsageError, atomic_write, csv_text, require_record
from utils.grading.submission import parse_submission, read_submission, student_answers

SOURCES, PAGE, TABLE = "similarity.json", "similarity.html", "similarity.csv"
TABLE_COLUMNS = ["question", "submission_a", "submission_b", "score", "rank"]
#: Tokens per k-gram, and k-grams per winnowing window: a copied run of K + WINDOW - 1 tokens is always caught.
K, WINDOW = 5, 4
#: A fingerprint present in more than this share of the class's answers to a cell is everyone's, not a copy's.
COMMON_SHARE = 0.5
#: Answers with fewer fingerprints (code) or characters (text) than this are too short to tell copying apart.
MIN_FINGERPRINTS, MIN_TEXT = 4, 40
#: Highlighted text passages shorter than this many characters are chance (a shared word or two).
MIN_TEXT_RUN = 12
#: Characters of an answer compared and shown: a longer one (a pasted data dump) is cut, with a note.
MAX_ANSWER = 20_000
#: Pairs kept per question in the page and in the CSV.
SHOWN, LISTED = 10, 50
ALL_CODE = "all code"
#: Tokens that are layout or comments (Python 3.12 splits f-strings into parts; 3.11 has no such tokens).
_SKIPPED = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER}
FSTRING_START, FSTRING_END = getattr(tokenize, "FSTRING_START", -1), getattr(tokenize, "FSTRING_END", -1)
_BUILTINS = frozenset(dir(builtins))


# ------------------------------------------------------------------------------------------------- fingerprints


def code_tokens(source: str) -> list[tuple[str, int, int]]:
    """(normalised token, start, end) for each token of Python code, from the standard tokenizer: comments,
    docstrings and layout dropped, 'N' for every name the student chose, 'S' for a string (an f-string is one),
    '0' for a number; keywords, builtins, operators and punctuation as written. Code the tokenizer cannot finish
    (a syntax error) keeps the tokens before the error."""
    starts = [0]
    for line in source.split("\n"):  # the lines as io.StringIO.readline cuts them (only at \n)
        starts.append(starts[-1] + len(line) + 1)
    found: list[tuple[int, str, int, int]] = []
    depth = 0  # inside an f-string (Python 3.12 tokenizes its parts)
    try:
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            kind, value = token.type, token.string
            begin, end = starts[token.start[0] - 1] + token.start[1], starts[token.end[0] - 1] + token.end[1]
            if kind == FSTRING_START:
                depth += 1
                if depth == 1:
                    found.append((tokenize.STRING, "S", begin, end))
                continue
            if depth:
                depth -= kind == FSTRING_END
                found[-1] = (tokenize.STRING, "S", found[-1][2], end)
                continue
            if kind in _SKIPPED:
                found.append((kind, "", begin, end))
                continue
            text = "S" if kind == tokenize.STRING else "0" if kind == tokenize.NUMBER else \
                "N" if kind == tokenize.NAME and not _kept_name(value) else value
            found.append((kind, text, begin, end))
    except (tokenize.TokenError, SyntaxError):
        pass
    return [(text, begin, end) for i, (kind, text, begin, end) in enumerate(found)
            if text and not (kind == tokenize.STRING and _alone(found, i))]


def _kept_name(name: str) -> bool:
    """Keywords and builtins are the language's, not the student's choice."""
    return keyword.iskeyword(name) or keyword.issoftkeyword(name) or name in _BUILTINS


def _alone(found: list[tuple[int, str, int, int]], i: int) -> bool:
    """Whether the string at `i` is a statement by itself (a docstring): a line start before it, a line end after."""
    before, after = i - 1, i + 1
    while before >= 0 and found[before][0] in (tokenize.COMMENT, tokenize.NL):
        before -= 1
    while after < len(found) and found[after][0] == tokenize.COMMENT:
        after += 1
    starts = before < 0 or found[before][0] in (tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT)
    return starts and (after == len(found) or found[after][0] in (tokenize.NEWLINE, tokenize.ENDMARKER))


def _hash(gram: Iterable[str]) -> int:
    """A stable 64-bit hash of a k-gram (the same on every run, unlike hash())."""
    return int.from_bytes(hashlib.blake2b("\x1f".join(gram).encode(), digest_size=8).digest(), "big")


def kgram_hashes(tokens: list[tuple[str, int, int]]) -> list[int]:
    """The hash of every run of K consecutive tokens."""
    texts = [t[0] for t in tokens]
    return [_hash(texts[i:i + K]) for i in range(len(texts) - K + 1)]


def winnow(hashes: list[int]) -> dict[int, list[int]]:
    """Winnowing (Schleimer, Wilkerson and Aiken, 2003): the smallest hash of every window of WINDOW k-grams,
    rightmost on ties, as {hash: the k-gram positions where it was chosen}."""
    chosen: dict[int, list[int]] = {}
    last = -1
    for start in range(max(len(hashes) - WINDOW + 1, 1 if hashes else 0)):
        window = hashes[start:start + WINDOW]
        low = min(window)
        position = start + max(i for i, h in enumerate(window) if h == low)
        if position != last:
            chosen.setdefault(low, []).append(position)
            last = position
    return chosen


def shared_hashes(texts: Iterable[str]) -> set[int]:
    """Every k-gram hash of the released lab's code and hints (not only the winnowed ones: nothing of it counts)."""
    found: set[int] = set()
    for text in texts:
        found.update(kgram_hashes(code_tokens(text)))
    return found


@dataclass
class CodeAnswer:
    """One submission's code for one answer cell, fingerprinted."""

    source: str
    tokens: list[tuple[str, int, int]]
    prints: dict[int, list[int]]


def fingerprint(source: str, shared: set[int]) -> CodeAnswer:
    """An answer's tokens and its fingerprints, without those of the released lab."""
    tokens = code_tokens(source)
    prints = {h: p for h, p in winnow(kgram_hashes(tokens)).items() if h not in shared}
    return CodeAnswer(source, tokens, prints)


def drop_common(answers: dict[str, CodeAnswer]) -> set[int]:
    """Remove from every answer the fingerprints more than COMMON_SHARE of the answers have; returns them."""
    counts: dict[int, int] = {}
    for answer in answers.values():
        for h in answer.prints:
            counts[h] = counts.get(h, 0) + 1
    common = {h for h, n in counts.items() if n > COMMON_SHARE * len(answers)} if len(answers) >= 4 else set()
    for answer in answers.values():
        answer.prints = {h: p for h, p in answer.prints.items() if h not in common}
    return common


# ------------------------------------------------------------------------------------------------- pairs


@dataclass
class Pair:
    """Two submissions' answers to one question and how close they are (score in 0..1)."""

    question: str
    a: str
    b: str
    score: float
    kind: str  # "code" or "text"
    shared: int = 0
    rank: int = 0


def code_pairs(question: str, answers: dict[str, CodeAnswer]) -> list[Pair]:
    """Every pair of answers long enough to judge, scored by the share of the shorter one's fingerprints found in
    the other (a short answer inside a long one still counts)."""
    judged = sorted(name for name, a in answers.items() if len(a.prints) >= MIN_FINGERPRINTS)
    sets = {name: set(answers[name].prints) for name in judged}
    pairs = []
    for a, b in combinations(judged, 2):
        shared = len(sets[a] & sets[b])
        if shared:
            pairs.append(Pair(question, a, b, shared / min(len(sets[a]), len(sets[b])), "code", shared))
    return pairs


def overall_pairs(cells: dict[str, dict[str, CodeAnswer]]) -> list[Pair]:
    """Pairs over all code cells at once: shared fingerprints over the smaller answer's, summed over the cells
    both answered, so a long copied answer weighs more than a short one two students wrote alike."""
    totals: dict[tuple[str, str], list[int]] = {}
    for answers in cells.values():
        sets = {n: set(a.prints) for n, a in answers.items() if a.prints}
        for a, b in combinations(sorted(sets), 2):
            total = totals.setdefault((a, b), [0, 0])
            total[0] += len(sets[a] & sets[b])
            total[1] += min(len(sets[a]), len(sets[b]))
    return [Pair(ALL_CODE, a, b, shared / size, "code", shared) for (a, b), (shared, size) in totals.items()
            if shared and size >= MIN_FINGERPRINTS]


def normal_text(text: str) -> str:
    """A written answer with runs of spaces made one and letters in lower case (same length as shown)."""
    collapsed = " ".join(text.split())
    return "".join(c.lower() if len(c.lower()) == 1 else c for c in collapsed)


def text_pairs(question: str, answers: dict[str, str]) -> list[Pair]:
    """Every pair of written answers long enough to judge, scored by rapidfuzz's normalised similarity."""
    normal = {name: normal_text(text) for name, text in answers.items()}
    texts = {name: text for name, text in normal.items() if len(text) >= MIN_TEXT}
    pairs = []
    for a, b in combinations(sorted(texts), 2):
        score = fuzz.ratio(texts[a], texts[b]) / 100
        if score > 0:
            pairs.append(Pair(question, a, b, score, "text"))
    return pairs


def ranked(pairs: list[Pair], keep: int) -> list[Pair]:
    """The `keep` closest pairs, closest first; among equal scores, the pair sharing more code first (more
    evidence), then by names, so the order is the same on every run."""
    pairs = sorted(pairs, key=lambda p: (-p.score, -p.shared, p.a, p.b))[:keep]
    for rank, pair in enumerate(pairs, start=1):
        pair.rank = rank
    return pairs


# ------------------------------------------------------------------------------------------------- answers


def released_texts(lab: str, labs: Path, solutions: Path) -> list[str]:
    """What every student was given: the released lab's code cells (stubs, setup, demos, visible tests) and the
    hints. Refused when the released lab is not there: without it, the stub would make every pair look alike."""
    notebook = labs / lab / f"{lab}.ipynb"
    if not notebook.is_file():
        raise UsageError(f"no released lab {notebook}: run this in the course repository or pass --labs (the stubs "
                         f"every student started from must be left out of the comparison)")
    texts = [cell_source(c) for c in read_notebook(notebook)["cells"] if c.get("cell_type") == "code"]
    hints = next((p for p in (labs / lab / "hints.json", solutions / lab / "hints.json") if p.is_file()), None)
    if hints is not None:
        texts.extend(_strings(json.loads(hints.read_text(encoding="utf-8"))))
    return texts


def _strings(value: Any) -> list[str]:
    """Every string inside JSON data."""
    if isinstance(value, str):
        return [value]
    items = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    return [text for item in items for text in _strings(item)]


def read_code(record: Record, lab: Lab, submissions: list[Submission]) -> tuple[dict[str, dict[str, str]], list[str],
                                                                                dict[str, str]]:
    """({answer cell: {submission: code}}, the submissions read, {submission: why its code was not read}) for the
    graded submissions.

    Answers left as the released stub are not compared. A graded submission whose file is not among those given
    (moved, deleted, or another list passed) is named, never silently skipped.
    """
    files = {s.name: s for s in submissions}
    code: dict[str, dict[str, str]] = {gid: {} for i, gid in lab.student_cells() if lab.kinds[i] == "solution"}
    read: list[str] = []
    unread: dict[str, str] = {name: "given, but not graded into this folder" for name in files
                              if name not in record.results}
    for name in sorted(record.results):
        if name not in files:
            unread[name] = "no file of this name among the submissions given (moved or deleted?)"
            continue
        data, problem = read_submission(files[name].path)
        notebook, _, message = parse_submission(data, lab) if data is not None else (None, "", problem)
        if notebook is None:
            unread[name] = message
            continue
        answers = student_answers(lab, notebook)
        read.append(name)
        for index, gid in lab.student_cells():
            source = answers.get(index)
            if gid in code and source is not None and source.strip():
                code[gid][name] = source
    return code, read, unread


def save_sources(out: Path, record: Record, lab: Lab, submissions: list[Submission], labs: Path,
                 solutions: Path) -> dict[str, Any]:
    """Read the code answers and what the lab gave everyone, and keep them in OUT/similarity.json."""
    code, read, unread = read_code(record, lab, submissions)
    tested_by = {gid: [q.id for q in lab.questions if gid in q.depends_on] for gid in code}
    sources = {"lab": record.lab, "released": released_texts(record.lab, labs, solutions), "code": code,
               "cells": list(code), "tested_by": tested_by, "read": read, "unread": unread}
    atomic_write(out / SOURCES, json.dumps(sources, indent=1, sort_keys=True) + "\n")
    return sources


def load_sources(out: Path) -> dict[str, Any] | None:
    """What `similarity` read from the submissions, or None when it has not been run on this folder."""
    path = out / SOURCES
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError as error:
        raise UsageError(f"{path} is damaged ({error}): run `course-grading similarity {out} SUBMISSION...` "
                         f"again") from None


# ------------------------------------------------------------------------------------------------- the report


@dataclass
class Section:
    """One question's ranked pairs and what was compared."""

    question: str
    kind: str
    title: str
    pairs: list[Pair]
    compared: int
    too_short: int = 0
    common: int = 0


@dataclass
class Report:
    """The ranked pairs of every question, with the answers for showing them side by side."""

    lab: str
    sections: list[Section]
    code: dict[str, dict[str, CodeAnswer]] = field(default_factory=dict)
    text: dict[str, dict[str, str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def build_report(record: Record, sources: dict[str, Any] | None, keep: int = LISTED) -> Report:
    """Rank the pairs of every question: the code cells in `sources` (if any) and the record's written answers."""
    report = Report(record.lab, [])
    if sources is None:
        report.notes.append("Only the written answers were compared: the folder does not keep the code of the "
                            "answer cells. Run `course-grading similarity OUT SUBMISSION...` with the files that "
                            "were graded to compare the code too.")
        sources = {"released": [], "code": {}, "tested_by": {}, "unread": {}}
    shared = shared_hashes(sources["released"])
    common: dict[str, int] = {}
    for gid in sources.get("cells", sorted(sources["code"])):
        report.code[gid] = {name: fingerprint(_cut(text, f"{name} {gid}", report), shared)
                            for name, text in sources["code"][gid].items()}
        common[gid] = len(drop_common(report.code[gid]))
    if report.code:
        compared = len({name for answers in report.code.values() for name in answers})
        report.sections.append(Section(ALL_CODE, "code", "All code cells together", ranked(
            overall_pairs(report.code), keep), compared))
    for gid, answers in report.code.items():
        tested = ", ".join(sources["tested_by"].get(gid, [])) or "no test"
        short = sum(len(a.prints) < MIN_FINGERPRINTS for a in answers.values())
        report.sections.append(Section(gid, "code", f"{gid} (code; tested by {tested})",
                                       ranked(code_pairs(gid, answers), keep), len(answers), short, common[gid]))
    for question in (q["id"] for q in record.questions if q["kind"] == "written"):
        answers = {name: _cut(q["answer"], f"{name} {question}", report) for name, result in record.results.items()
                   for q in result["questions"] if q["question"] == question and q.get("answer")}
        report.text[question] = answers
        short = sum(len(normal_text(t)) < MIN_TEXT for t in answers.values())
        report.sections.append(Section(question, "text", f"{question} (written answer)",
                                       ranked(text_pairs(question, answers), keep), len(answers), short))
    for name, why in sorted(sources["unread"].items()):
        report.notes.append(f"{name}: code not compared: {why}")
    if "read" in sources:
        for name in sorted(set(record.results) - set(sources["read"]) - set(sources["unread"])):
            report.notes.append(f"{name}: code not compared: graded after `similarity` read the submissions (run "
                                f"it again with them)")
    return report


def _cut(text: str, what: str, report: Report) -> str:
    """An answer's first MAX_ANSWER characters (noted when it is longer)."""
    if len(text) > MAX_ANSWER:
        report.notes.append(f"{what}: only the first {MAX_ANSWER:,} of {len(text):,} characters were compared")
    return text[:MAX_ANSWER]


def table_text(report: Report) -> str:
    """similarity.csv: every listed pair of every question with its score and rank."""
    rows = [{"question": p.question, "submission_a": p.a, "submission_b": p.b, "score": round(p.score, 3),
             "rank": p.rank} for section in report.sections for p in section.pairs]
    return csv_text(TABLE_COLUMNS, rows)


# ------------------------------------------------------------------------------------------------- the page

_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 90rem; margin: 1.5rem auto; padding: 0 1rem; color: #222; }
table { border-collapse: collapse; margin: 0.5rem 0 1rem; }
th, td { border: 1px solid #bbb; padding: 0.3rem 0.6rem; text-align: left; vertical-align: top; }
th { background: #f0f0f0; }
td.score { text-align: right; font-variant-numeric: tabular-nums; }
.sides { display: grid; grid-template-columns: 1fr 1fr; gap: 1rem; }
.sides h3 { font-size: 1rem; margin: 0.3rem 0; overflow-wrap: anywhere; }
pre { white-space: pre-wrap; overflow-wrap: anywhere; background: #f7f7f7; border: 1px solid #ddd; padding: 0.5rem;
      margin: 0; font-family: ui-monospace, monospace; font-size: 0.85rem; }
mark { background: #ffd54f; color: #000; }
details { margin: 0.3rem 0 0.8rem; }
summary { cursor: pointer; }
.note { color: #444; }
"""


def _merge_spans(text: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Spans joined where they overlap or only spaces part them (a dropped comment or docstring stays unmarked)."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and (start <= merged[-1][1] or not text[merged[-1][1]:start].strip()):
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def marked(text: str, spans: list[tuple[int, int]]) -> str:
    """`text` escaped, with the spans in <mark>."""
    parts, done = [], 0
    for start, end in _merge_spans(text, spans):
        parts += [html.escape(text[done:start]), "<mark>", html.escape(text[start:end]), "</mark>"]
        done = end
    return "".join(parts) + html.escape(text[done:])


def code_spans(answer: CodeAnswer, common: set[int]) -> list[tuple[int, int]]:
    """The tokens of the code covered by the fingerprints it shares with the other answer."""
    covered = {position + i for h in common for position in answer.prints[h] for i in range(K)}
    return [answer.tokens[i][1:] for i in sorted(covered)]


def text_spans(a: str, b: str) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """The passages of at least MIN_TEXT_RUN characters two written answers share (rapidfuzz's Indel alignment)."""
    left, right = [], []
    for block in Indel.opcodes(normal_text(a), normal_text(b)):
        if block.tag == "equal" and block.src_end - block.src_start >= MIN_TEXT_RUN:
            left.append((block.src_start, block.src_end))
            right.append((block.dest_start, block.dest_end))
    return left, right


def _side_by_side(report: Report, section: Section, pair: Pair) -> str:
    """The two answers of a pair next to each other, the shared parts marked."""
    if section.kind == "code":
        a, b = report.code[section.question][pair.a], report.code[section.question][pair.b]
        common = set(a.prints) & set(b.prints)
        texts = [(pair.a, a.source, code_spans(a, common)), (pair.b, b.source, code_spans(b, common))]
    else:
        a, b = report.text[section.question][pair.a], report.text[section.question][pair.b]
        left, right = text_spans(a, b)
        texts = [(pair.a, " ".join(a.split()), left), (pair.b, " ".join(b.split()), right)]
    columns = "".join(f"<div><h3>{html.escape(name)}</h3><pre>{marked(text, spans)}</pre></div>"
                      for name, text, spans in texts)
    return (f"<details><summary>{pair.rank}. {html.escape(pair.a)} and {html.escape(pair.b)}: "
            f"{pair.score:.0%}</summary><div class=\"sides\">{columns}</div></details>")


def _section_html(report: Report, section: Section, index: int) -> str:
    """One question: what was compared, the ranked pairs, and the closest ones side by side."""
    shown = section.pairs[:SHOWN]
    what = "shared fingerprints over the smaller answer's" if section.kind == "code" else "rapidfuzz similarity"
    parts = [f"<section id=\"q{index}\"><h2>{html.escape(section.title)}</h2>",
             f"<p class=\"note\">{section.compared} answers compared"
             + (f" ({section.too_short} too short to judge)" if section.too_short else "")
             + (f"; {section.common} fingerprints that more than half share left out" if section.common else "")
             + f"; score: {what}.</p>"]
    if not shown:
        return "".join(parts) + "<p>No pair has anything in common beyond what the lab gave everyone.</p></section>"
    code = section.kind == "code"
    rows = "".join(f"<tr><td>{p.rank}</td><td>{html.escape(p.a)}</td><td>{html.escape(p.b)}</td>"
                   f"<td class=\"score\">{p.score:.0%}</td>" + (f"<td class=\"score\">{p.shared}</td>" if code else "")
                   + "</tr>" for p in shown)
    parts.append(f"<table><thead><tr><th scope=\"col\">Rank</th><th scope=\"col\">Submission</th>"
                 f"<th scope=\"col\">Submission</th><th scope=\"col\">Score</th>"
                 + ("<th scope=\"col\">Shared fingerprints</th>" if code else "")
                 + f"</tr></thead><tbody>{rows}</tbody></table>")
    if section.question != ALL_CODE:
        parts.extend(_side_by_side(report, section, p) for p in shown)
    return "".join(parts) + "</section>"


def page_html(report: Report, back: str | None = None) -> str:
    """The report as one self-contained page: inline style, no script, nothing loaded from elsewhere (with a link
    `back` to the review page when it is that page's tab)."""
    lab = html.escape(report.lab)
    contents = "".join(f"<li><a href=\"#q{i}\">{html.escape(s.title)}</a></li>" for i, s in enumerate(report.sections))
    notes = "".join(f"<li>{html.escape(note)}</li>" for note in report.notes)
    body = "".join(_section_html(report, s, i) for i, s in enumerate(report.sections))
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">"
            f"<title>Similar answers: {lab}</title><style>{_STYLE}</style></head><body>"
            + (f"<nav aria-label=\"Review\"><a href=\"{html.escape(back)}\">Back to the written answers</a></nav>"
               if back else "") + "<main>"
            f"<h1>Answers that look alike: {lab}</h1>"
            f"<p>For each question, the pairs of submissions whose answers are closest, closest first. What the "
            f"released lab gave everyone (the stubs, its own code, the hints) is left out, and so is code that more "
            f"than half of the class wrote alike. Code is compared with names and literals replaced by their kind, "
            f"so renamed variables and reordered functions still match. A close pair is a reason to read both "
            f"answers, not proof of copying: short answers can be alike by chance. This report changes no grade."
            f"</p>" + (f"<h2>Notes</h2><ul>{notes}</ul>" if notes else "")
            + f"<nav aria-label=\"Questions\"><ul>{contents}</ul></nav>{body}</main></body></html>\n")


def render_report_page(out: Path, back: str | None = None) -> str:
    """The similarity report of a grading output folder, as a complete HTML page (the review page's tab, whose
    address is `back`)."""
    return page_html(folder_report(out), back)


def folder_report(out: Path) -> Report:
    """The report from what the folder holds: its record and the code an earlier `similarity` run kept, with a
    note when the folder was graded again since (that copy of the code may be out of date)."""
    report = build_report(require_record(out), load_sources(out))
    kept = out / SOURCES
    if kept.is_file() and (out / RECORD).stat().st_mtime_ns > kept.stat().st_mtime_ns:
        report.notes.insert(0, "The folder was graded again after the code was read: run `course-grading "
                               "similarity OUT SUBMISSION...` again if submissions changed.")
    return report


def write_report(out: Path, submissions: list[Submission] | None, lab: Lab | None, labs: Path,
                 solutions: Path) -> Report:
    """Compare the folder's answers (reading the code from `submissions` when given, else from what an earlier
    run kept) and write OUT/similarity.html and OUT/similarity.csv. The grades are only read."""
    if submissions is not None and lab is not None:
        record = require_record(out)
        report = build_report(record, save_sources(out, record, lab, submissions, labs, solutions))
    else:
        report = folder_report(out)
    atomic_write(out / PAGE, page_html(report))
    atomic_write(out / TABLE, table_text(report))
    return report
