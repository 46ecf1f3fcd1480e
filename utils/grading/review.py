"""The review page: a class's written answers scored question by question in the browser (`course-grading review`).

A small web app on 127.0.0.1 with a random token in its address. It shows each written question with the model
answer from solutions/, groups identical answers (scored once for every member) and puts near-identical ones next
to each other, and keeps a rubric of items with points. Every change is saved at once through scores.py into the
folder's written.csv and rubric.json, and the CSVs and feedback pages are republished.
"""

from __future__ import annotations

import json
import re
import secrets
from functools import lru_cache
from html import escape
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from rapidfuzz import fuzz, process

from utils.grading.notebook import LabError, cell_source, find_labs, parse_lab
from utils.grading.release import is_answer_marker
from utils.grading.scores import (WRITTEN, UsageError, enter_scores, entering, load_rubric, read_entered,
                                  require_record, save_rubric)

ASSETS = Path(__file__).with_name("review_assets")
_HEADING = re.compile(r"^#{1,6}[ \t]+", re.MULTILINE)  # a markdown heading's marks (the page shows plain text)
STATIC = {"review.js": "text/javascript", "review.css": "text/css"}
#: Two different answers at least this similar (rapidfuzz's ratio, 0-100, on the normalised text) are shown together.
SIMILAR = 85
#: The largest request body accepted (a comment or a rubric item is far smaller).
MAX_BODY = 1 << 20
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
       "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
#: The similarity report is a document of its own: its styles may be inline, but no script runs in it.
REPORT_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"


# ------------------------------------------------------------------------------------------------- the questions


def normalise(text: str) -> str:
    """An answer as compared for grouping: runs of white space made one space, case folded."""
    return " ".join(text.split()).casefold()


def model_answer(source: str) -> str:
    """A written-answer cell of a solution without its BEGIN/END SOLUTION markers (as the grader reads answers)."""
    return "\n".join(line for line in source.split("\n") if not is_answer_marker(line)).strip()


def lab_prompts(solutions: Path, lab: str) -> dict[str, dict[str, str]]:
    """{question: {"prompt", "model"}} for the lab's written questions: the prompt is the closest markdown cell
    above the answer cell (the question as the student read it); {} when the lab is not in `solutions`."""
    path = find_labs(solutions).get(lab)
    if path is None:
        return {}
    parsed = parse_lab(lab, path)
    prompts = {}
    for question in parsed.questions:
        if question.kind != "written":
            continue
        above = [i for i in range(question.cell_index) if parsed.kinds[i] == "fixed"
                 and parsed.cells[i].get("cell_type") == "markdown"]
        prompt = _HEADING.sub("", cell_source(parsed.cells[above[-1]])).strip() if above else ""
        prompts[question.id] = {"prompt": prompt, "model": model_answer(cell_source(parsed.cells[question.cell_index]))}
    return prompts


@lru_cache(maxsize=64)
def _group(texts: tuple[tuple[str, str], ...]) -> tuple[tuple[tuple[str, ...], tuple[int, ...]], ...]:
    """The cached work of `group_answers` (answers do not change while a page is open)."""
    by_text: dict[str, list[str]] = {}
    for name, text in sorted(texts):
        by_text.setdefault(normalise(text), []).append(name)
    keys = sorted(by_text, key=lambda k: (-len(by_text[k]), k))
    ratios = process.cdist(keys, keys, scorer=fuzz.ratio, score_cutoff=SIMILAR, workers=1)
    near = {a: [b for j, b in enumerate(keys) if j != i and ratios[i][j] >= SIMILAR] for i, a in enumerate(keys)}
    order: list[str] = []
    for key in keys:  # each group followed by the groups near it (and theirs), largest first
        queue = [key]
        while queue:
            current = queue.pop(0)
            if current not in order:
                order.append(current)
                queue += near[current]
    place = {k: i for i, k in enumerate(order)}
    return tuple((tuple(by_text[k]), tuple(sorted(place[n] for n in near[k]))) for k in order)


def group_answers(answers: dict[str, str]) -> list[tuple[list[str], list[int]]]:
    """(members, indices of near-identical groups) for each group of the same answer (after `normalise`), in the
    order shown: the largest groups first, each followed by the groups that are nearly the same."""
    return [(list(members), list(near)) for members, near in _group(tuple(sorted(answers.items())))]


# ------------------------------------------------------------------------------------------------- the rubric


def clamp(value: float, maximum: float) -> float:
    """A score kept within [0, maximum] (the page shows the unclamped value beside it)."""
    return min(max(value, 0.0), maximum)


def rubric_score(base: float | None, items: list[str], points: dict[str, float]) -> float | None:
    """The unclamped score of an answer: the typed score (0 when only items are given) plus its items' points;
    None when it has neither."""
    used = [i for i in items if i in points]
    if base is None and not used:
        return None
    return (base or 0.0) + sum(points[i] for i in used)


def _question_rubric(rubric: dict[str, Any], question: str) -> dict[str, Any]:
    return rubric["questions"].setdefault(question, {"items": [], "answers": {}})


def _number(value: Any, what: str) -> float | None:
    """A JSON number from the page (None stays None); anything else is refused."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value or abs(value) > 1e6:
        raise UsageError(f"{what} must be a number, not {value!r}")
    return float(value)


class Review:
    """A grading output folder as the review page reads and changes it (only through scores.py)."""

    def __init__(self, folder: Path, solutions: Path) -> None:
        self.folder = folder
        record = require_record(folder)
        try:
            self.prompts = lab_prompts(solutions, record.lab)
        except LabError:
            self.prompts = {}

    def state(self) -> dict[str, Any]:
        """Everything the page shows, read from disk: each written question with its groups, scores and rubric."""
        record = require_record(self.folder)
        rubric = load_rubric(self.folder)
        entered = {(e.submission, e.question): e for e in read_entered(self.folder / WRITTEN, record)}
        questions = []
        for question in (q for q in record.questions if q["kind"] == "written"):
            qid, maximum = question["id"], float(question["points"])
            reading = {name: q.get("answer", "") for name, result in record.results.items()
                       for q in result["questions"] if q["question"] == qid and q["status"] == "needs-reading"}
            answers = {name: text for name, text in reading.items() if text}
            empty = sorted(name for name, text in reading.items() if not text)
            own = _question_rubric(rubric, qid)
            points = {item["id"]: item["points"] for item in own["items"]}
            groups = []
            for members, near in group_answers(answers):
                cells = [entered.get((m, qid)) for m in members]
                scores = {c.score if c else None for c in cells}
                comments = {c.comment if c else "" for c in cells}
                given = own["answers"].get(members[0], {})
                raw = rubric_score(given.get("base"), given.get("items", []), points)
                groups.append({"members": members, "answer": answers[members[0]], "near": near,
                               "score": next(iter(scores)) if len(scores) == 1 else None, "mixed": len(scores) > 1,
                               "comment": next(iter(comments)) if len(comments) == 1 else "", "base": given.get("base"),
                               "items": given.get("items", []), "raw": raw,
                               "check": "; ".join(sorted({c.check for c in cells if c and c.check}))})
            scored = sum(1 for name in answers if (e := entered.get((name, qid))) and e.score is not None)
            questions.append({"id": qid, "points": maximum, **self.prompts.get(qid, {"prompt": "", "model": ""}),
                              "groups": groups, "empty": empty, "scored": scored, "total": len(answers),
                              "rubric": own["items"]})
        return {"lab": record.lab, "questions": questions}

    def _maximum(self, question: str) -> float:
        record = require_record(self.folder)
        for q in record.questions:
            if q["id"] == question and q["kind"] == "written":
                return float(q["points"])
        raise UsageError(f"{record.lab} has no written question {question!r}")

    def score(self, question: str, members: list[str], change: dict[str, Any]) -> None:
        """Give every member of a group a typed score ("base"), rubric items ("items") and/or a comment ("comment");
        the score saved is the typed score plus the items' points, clamped to [0, max]."""
        maximum = self._maximum(question)
        if not members or not all(isinstance(m, str) for m in members):
            raise UsageError("no answers to score")
        with entering():
            rubric = load_rubric(self.folder)
            own = _question_rubric(rubric, question)
            points = {item["id"]: item["points"] for item in own["items"]}
            record = require_record(self.folder)
            entered = read_entered(self.folder / WRITTEN, record)
            typed = {e.submission: e.score for e in entered if e.question == question}
            changes: dict[tuple[str, str], dict[str, Any]] = {}
            for member in members:  # a score typed elsewhere (a spreadsheet) is where the rubric starts from
                given = dict(own["answers"].get(member) or {"base": typed.get(member), "items": []})
                if "base" in change:
                    given["base"] = _number(change["base"], "the score")
                if "items" in change:
                    given["items"] = [i for i in change["items"] or [] if isinstance(i, str) and i in points]
                cell: dict[str, Any] = {}
                if "base" in change or "items" in change:
                    raw = rubric_score(given["base"], given["items"], points)
                    cell["score"] = None if raw is None else clamp(raw, maximum)
                    own["answers"][member] = given
                if "comment" in change:
                    cell["comment"] = str(change["comment"])[:10000]
                changes[(member, question)] = cell
            save_rubric(self.folder, rubric)
            enter_scores(self.folder, changes)

    def edit_item(self, question: str, item: dict[str, Any]) -> None:
        """Add a rubric item, or change or delete one ("delete": true); every answer that used it is scored again."""
        maximum = self._maximum(question)
        text = str(item.get("text", "")).strip()[:500]
        with entering():
            rubric = load_rubric(self.folder)
            own = _question_rubric(rubric, question)
            ids = [i["id"] for i in own["items"]]
            if item.get("id") is None:
                if not text:
                    raise UsageError("a rubric item needs a text")
                new = str(1 + max((int(i) for i in ids if i.isdigit()), default=0))
                own["items"].append({"id": new, "text": text, "points": _number(item.get("points"), "points") or 0.0})
                save_rubric(self.folder, rubric)
                return
            if item["id"] not in ids:
                raise UsageError(f"no rubric item {item['id']!r} for {question}")
            if item.get("delete"):
                own["items"] = [i for i in own["items"] if i["id"] != item["id"]]
            else:
                edited = next(i for i in own["items"] if i["id"] == item["id"])
                edited["text"] = text or edited["text"]
                edited["points"] = _number(item.get("points"), "points") or 0.0
            points = {i["id"]: i["points"] for i in own["items"]}
            changes = {}
            for member, given in own["answers"].items():
                if item["id"] in given.get("items", []):
                    given["items"] = [i for i in given["items"] if i in points]
                    raw = rubric_score(given.get("base"), given["items"], points)
                    changes[(member, question)] = {"score": None if raw is None else clamp(raw, maximum)}
            save_rubric(self.folder, rubric)
            if changes:
                enter_scores(self.folder, changes)


# ------------------------------------------------------------------------------------------------- the server


def similarity_page(folder: Path, back: str) -> str:
    """The similarity report (utils/grading/similarity.py) as a page, or a page saying it is not available (with a
    link `back` to the answers)."""
    try:
        from utils.grading.similarity import render_report_page
    except ImportError:
        return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Similarity</title>"
                "<style>body { font: 16px/1.45 system-ui, sans-serif; margin: 1rem 1.2rem; }</style></head>"
                f"<body><main><h1>Similarity</h1><p>The similarity report is not available in this version of the "
                f"grader.</p><p><a href=\"{escape(back)}\">Back to the written answers</a></p></main></body></html>\n")
    return render_report_page(folder, back)


class ReviewServer(ThreadingHTTPServer):
    """The review page's server: bound to 127.0.0.1 only, answering only requests that carry its token."""

    daemon_threads = True

    def __init__(self, folder: Path, solutions: Path, port: int = 0) -> None:
        self.review = Review(folder, solutions)
        self.token = secrets.token_urlsafe(24)
        super().__init__(("127.0.0.1", port), ReviewHandler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/?token={self.token}"


class ReviewHandler(BaseHTTPRequestHandler):
    """GET the page, its assets, the state (/api/state) and the similarity report; POST /api/score and /api/rubric."""

    server: ReviewServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class's name)
        """Log nothing: each request's address holds the token."""

    def _send(self, status: int, body: str, kind: str = "text/plain", csp: str = CSP) -> None:
        data = body.encode("utf-8")
        self.send_response(status)
        for name, value in (("Content-Type", f"{kind}; charset=utf-8"), ("Content-Length", str(len(data))),
                            ("Content-Security-Policy", csp), ("X-Content-Type-Options", "nosniff"),
                            ("Referrer-Policy", "no-referrer"), ("Cache-Control", "no-store"),
                            ("X-Frame-Options", "DENY"), ("Cross-Origin-Resource-Policy", "same-origin")):
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _allowed(self) -> bool:
        """The token is right and the Host is this server (a page elsewhere cannot rebind a name to us)."""
        port = self.server.server_address[1]
        token = parse_qs(urlsplit(self.path).query).get("token", [""])[0]
        host_ok = self.headers.get("Host", "") in (f"127.0.0.1:{port}", f"localhost:{port}")
        return host_ok and secrets.compare_digest(token.encode(), self.server.token.encode())

    def do_GET(self) -> None:  # noqa: N802 (the base class's name)
        if not self._allowed():
            return self._send(HTTPStatus.FORBIDDEN, "forbidden: open the address the review command printed")
        path = urlsplit(self.path).path
        if path == "/":
            page = (ASSETS / "review.html").read_text(encoding="utf-8")
            return self._send(HTTPStatus.OK, page.replace("{{TOKEN}}", escape(self.server.token)), "text/html")
        if path.startswith("/assets/") and path[len("/assets/"):] in STATIC:
            name = path[len("/assets/"):]
            return self._send(HTTPStatus.OK, (ASSETS / name).read_text(encoding="utf-8"), STATIC[name])
        if path == "/api/state":
            return self._json(self.server.review.state)
        if path == "/similarity":
            page = similarity_page(self.server.review.folder, f"/?token={self.server.token}")
            return self._send(HTTPStatus.OK, page, "text/html", REPORT_CSP)
        return self._send(HTTPStatus.NOT_FOUND, "not found")

    def do_POST(self) -> None:  # noqa: N802 (the base class's name)
        if not self._allowed():
            return self._send(HTTPStatus.FORBIDDEN, "forbidden: open the address the review command printed")
        origin = f"http://{self.headers.get('Host', '')}"
        if self.headers.get("Origin") != origin or self.headers.get("Content-Type", "") != "application/json":
            return self._send(HTTPStatus.FORBIDDEN, "forbidden: a change must come from the review page itself")
        length = int(self.headers.get("Content-Length") or 0)
        if not 0 < length <= MAX_BODY:
            return self._send(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "request body missing or too large")
        try:
            body = json.loads(self.rfile.read(length))
            if not isinstance(body, dict):
                raise ValueError("not an object")
        except ValueError:
            return self._send(HTTPStatus.BAD_REQUEST, "the request is not a JSON object")
        review, path = self.server.review, urlsplit(self.path).path
        if path == "/api/score":
            change = {k: body[k] for k in ("base", "items", "comment") if k in body}
            return self._json(lambda: review.score(str(body.get("question")), body.get("members") or [], change)
                              or review.state())
        if path == "/api/rubric":
            return self._json(lambda: review.edit_item(str(body.get("question")), body) or review.state())
        return self._send(HTTPStatus.NOT_FOUND, "not found")

    def _other(self) -> None:
        """Any other method: refused (403 without the token, 405 with it)."""
        status = HTTPStatus.METHOD_NOT_ALLOWED if self._allowed() else HTTPStatus.FORBIDDEN
        self._send(status, "only GET and POST are served")

    do_HEAD = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _other  # noqa: N815 (the base class's names)

    def _json(self, make) -> None:
        """Answer with make()'s JSON, or 409 with the message of a refusal (e.g. written.csv saved unreadable)."""
        try:
            data = make()
        except (UsageError, LabError) as error:
            return self._send(HTTPStatus.CONFLICT, json.dumps({"error": str(error)}), "application/json")
        return self._send(HTTPStatus.OK, json.dumps(data), "application/json")
