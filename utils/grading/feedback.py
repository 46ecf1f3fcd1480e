"""The per-student feedback page: one row per question with its result and the error message, never test code."""

from __future__ import annotations

from html import escape
from typing import Any

from utils.grading.grader import STATUSES

_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
table { border-collapse: collapse; width: 100%; }
th, td { border: 1px solid #ccc; padding: 0.4rem 0.6rem; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
.passed { color: #17622b; font-weight: bold; }
.needs-reading { color: #6b5200; font-weight: bold; }
.problem { color: #a11; font-weight: bold; }
.comment { border-left: 4px solid #2a5db0; padding-left: 0.6rem; white-space: pre-wrap; }
pre { white-space: pre-wrap; margin: 0; font-family: ui-monospace, monospace; font-size: 0.9rem; }
"""


#: Statuses the scores module adds to the grader's (utils/grading/scores.py).
PERSON_STATUSES = {
    "read": "a written answer, read and scored by a person",
    "override": "a score set by the instructor instead of the grader's",
}


def _points(value: float | None) -> str:
    """3.0 -> '3', 2.5 -> '2.5', None -> '?' (the grader failed: no score yet)."""
    return "?" if value is None else f"{value:g}"


def feedback_html(submission: str, lab: str, result: dict[str, Any]) -> str:
    """A self-contained HTML page explaining a submission's grade."""
    legend = STATUSES | PERSON_STATUSES
    rows = []
    for q in result["questions"]:
        status = q["status"]
        css = "passed" if status in ("passed", "read", "override") else \
            "needs-reading" if status == "needs-reading" else "problem"
        if status == "read":
            text = q.get("answer") or ""
            details = "Read and scored by a person." + (f"<pre>{escape(text)}</pre>" if text else "")
        elif status == "needs-reading":  # the whole written answer, verbatim (the message is a clipped copy)
            text = q.get("answer") or q["message"]
            details = "Read and graded by a person." + (f"<pre>{escape(text)}</pre>" if text else "")
        else:
            details = f"<pre>{escape(q['message'])}</pre>" if q["message"] else ""
        if q.get("comment"):  # the instructor's comment to the student (written.csv's comment column)
            details += f"<p class=\"comment\"><b>Comment:</b> {escape(q['comment'])}</p>"
        rows.append(
            f"<tr><td>{escape(q['question'])}</td><td>{_points(q['score'])} / {_points(q['max_score'])}</td>"
            f"<td class=\"{css}\" title=\"{escape(legend.get(status, status))}\">{escape(status)}</td>"
            f"<td>{details}</td></tr>"
        )
    note = ""
    if result["status"] in ("invalid-notebook", "wrong-lab"):
        note = f"<p class=\"problem\">{escape(result['message'])}</p>"
    elif any(q["status"] == "needs-reading" and q.get("answer") for q in result["questions"]):
        note = "<p>The score counts the automatically graded questions; written answers are added after reading.</p>"
    used = {q["status"] for q in result["questions"]}
    legend = "".join(f"<li><b>{escape(k)}</b>: {escape(v)}</li>" for k, v in legend.items()
                     if k in STATUSES or k in used)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<title>{escape(lab)} feedback: {escape(submission)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
        f"<h1>Feedback on {escape(lab)}</h1>\n"
        f"<p>Submission <b>{escape(submission)}</b>: <b>{_points(result['score'])} / "
        f"{_points(result['max_score'])}</b> points.</p>\n{note}\n"
        "<table>\n<tr><th>Question</th><th>Points</th><th>Result</th><th>Details</th></tr>\n"
        + "\n".join(rows)
        + "\n</table>\n<h2>What the results mean</h2>\n<ul>" + legend + "</ul>\n</body>\n</html>\n"
    )
