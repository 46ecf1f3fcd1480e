"""The review page's server and store (utils/grading/review.py): the token, the loopback bind, grouping, the rubric,
saving through scores.py (atomic, concurrent, reloaded from disk), comments on the feedback page, and export.

The graded folder is made without the sandbox: lab1's real questions (solutions/lab1) with a result per submission
as the grader writes it (tests passed, written answers to read), published by scores.py.
"""

from __future__ import annotations

import csv
import http.client
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from utils.grading.cli import main
from utils.grading.lms import read_csv
from utils.grading.notebook import parse_lab
from utils.grading.review import Review, ReviewServer, group_answers
from utils.grading.scores import Record, feedback_file, publish, read_table

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = ROOT / "solutions"
CANVAS_ROSTER = Path(__file__).parent / "fixtures" / "lms" / "canvas-gradebook-export.csv"
W1, W2 = "w1_min_freq", "w2_unseen_rows"


def graded_folder(out: Path, answers: dict[str, dict[str, str]], ids: dict[str, str] | None = None) -> Path:
    """A grading output folder of lab1 as `grade` leaves it: every test passed, the written answers to read."""
    lab = parse_lab("lab1", SOLUTIONS / "lab1" / "lab1.ipynb")
    results = {}
    for name, written in answers.items():
        questions = [{"question": q.id, "score": q.points, "max_score": q.points, "status": "passed", "message": ""}
                     if q.kind == "test" else
                     {"question": q.id, "score": 0.0, "max_score": q.points, "status": "needs-reading",
                      "message": written.get(q.id) or "(no answer written)", "answer": written.get(q.id, "")}
                     for q in lab.questions]
        results[name] = {"status": "needs-reading", "message": "", "score": 12.0, "max_score": lab.max_score,
                         "questions": questions, "id": (ids or {}).get(name, ""), "late": False, "settings": "s"}
    record = Record("lab1", [{"id": q.id, "points": q.points, "kind": q.kind} for q in lab.questions], None,
                    sorted(answers), sorted(answers), results)
    out.mkdir(parents=True)
    record.save(out)
    publish(out, record)
    return out


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    answers = {f"s{i:02}": {W1: f"Answer {i}: rare words get few updates, case {i * 7919}.",
                            W2: f"Rows never looked up keep their random values ({i})."} for i in range(6)}
    answers["s06"] = {W1: "  answer 0: RARE words get few updates,\n case 0.  "}  # s00's answer, respaced
    answers["s07"] = {}  # wrote nothing
    return graded_folder(tmp_path / "out", answers)


@pytest.fixture()
def server(folder: Path) -> Iterator[ReviewServer]:
    server = ReviewServer(folder, SOLUTIONS)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def request(server: ReviewServer, method: str, path: str, body: dict | None = None, token: str | None = "",
            headers: dict[str, str] | None = None) -> tuple[int, str, dict[str, str]]:
    """A request as the page makes it (token in the address, same-origin POST), or altered by the arguments."""
    port = server.server_address[1]
    token = server.token if token == "" else token
    query = f"{'&' if '?' in path else '?'}token={token}" if token is not None else ""
    sent = {"Host": f"127.0.0.1:{port}", "Origin": f"http://127.0.0.1:{port}", "Content-Type": "application/json"}
    sent.update(headers or {})
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request(method, path + query, body=json.dumps(body) if body is not None else None,
                       headers={k: v for k, v in sent.items() if v is not None})
    response = connection.getresponse()
    text = response.read().decode()
    connection.close()
    return response.status, text, dict(response.getheaders())


def scores(folder: Path, question: str = W1) -> dict[str, str]:
    return {r["submission"]: r["score"] for r in read_csv(folder / "written.csv") if r["question"] == question}


def group_of(state: dict, question: str, member: str) -> dict:
    q = next(q for q in state["questions"] if q["id"] == question)
    return next(g for g in q["groups"] if member in g["members"])


def test_requests_without_the_right_token_or_from_elsewhere_are_refused(server):
    assert request(server, "GET", "/", token=None)[0] == 403
    assert request(server, "GET", "/api/state", token="x" + server.token[1:])[0] == 403
    assert request(server, "GET", "/assets/review.js", token=None)[0] == 403
    assert [request(server, method, "/", token=None)[0] for method in ("HEAD", "PUT", "DELETE", "OPTIONS")] == [403] * 4
    status, page, headers = request(server, "GET", "/")
    assert status == 200 and f"review.js?token={server.token}" in page
    csp = headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert headers["Referrer-Policy"] == "no-referrer"  # the token never leaves in a Referer header
    change = {"question": W1, "members": ["s01"], "base": 1}
    assert request(server, "POST", "/api/score", change, token=None)[0] == 403
    assert request(server, "POST", "/api/score", change, headers={"Origin": "http://evil.example"})[0] == 403
    assert request(server, "POST", "/api/score", change, headers={"Origin": None})[0] == 403
    assert request(server, "POST", "/api/score", change, headers={"Content-Type": "text/plain"})[0] == 403
    rebound = {"Host": "evil.example", "Origin": "http://evil.example"}  # DNS rebinding: a name pointed at us
    assert request(server, "GET", "/api/state", headers=rebound)[0] == 403
    assert request(server, "POST", "/api/score", change, headers=rebound)[0] == 403
    assert scores(server.review.folder)["s01"] == ""  # no refused request changed anything
    assert request(server, "POST", "/api/score", change)[0] == 200 and scores(server.review.folder)["s01"] == "1"


def outward_address() -> str | None:
    """This machine's address on its network (a UDP socket's route; nothing is sent), None without a network."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))
        except OSError:
            return None
        address = probe.getsockname()[0]
    return None if address.startswith("127.") else address


def test_the_server_listens_on_loopback_only(server):
    assert server.server_address[0] == "127.0.0.1"
    address = outward_address()
    if address:  # the same port on the machine's network address: nobody answers
        with pytest.raises(OSError):
            socket.create_connection((address, server.server_address[1]), timeout=2).close()
    assert server.url.startswith("http://127.0.0.1:") and server.token in server.url
    assert len(server.token) >= 32 and ReviewServer(server.review.folder, SOLUTIONS).token != server.token


def test_identical_answers_form_one_group_and_near_ones_sit_together():
    groups = group_answers({"a": "The rows keep random values.", "b": "the rows   keep\nrandom VALUES.",
                            "c": "The rows keep random values!", "d": "Something else entirely, about batches.",
                            "e": "Unrelated text on padding and masks."})
    members = [g[0] for g in groups]
    assert members[0] == ["a", "b"] and ["c"] in members and len(groups) == 4
    near = members.index(["c"])
    assert near == 1 and groups[0][1] == [1] and groups[1][1] == [0]  # shown next to each other, both ways
    assert groups[members.index(["d"])][1] == []


def test_the_state_shows_questions_groups_and_progress(server):
    state = json.loads(request(server, "GET", "/api/state")[1])
    q1 = state["questions"][0]
    assert [q["id"] for q in state["questions"]] == [W1, W2] and state["lab"] == "lab1"
    assert "Written question W1" in q1["prompt"] and "BEGIN SOLUTION" not in q1["model"] and "[UNK]" in q1["model"]
    assert group_of(state, W1, "s00")["members"] == ["s00", "s06"] and q1["empty"] == ["s07"]
    assert (q1["scored"], q1["total"], len(q1["groups"])) == (0, 7, 6)


def test_a_group_score_goes_to_every_member_and_is_clamped(server):
    folder = server.review.folder
    request(server, "POST", "/api/score", {"question": W1, "members": ["s00", "s06"], "base": 0.5})
    assert scores(folder)["s00"] == scores(folder)["s06"] == "0.5"
    state = json.loads(request(server, "POST", "/api/score", {"question": W1, "members": ["s01"], "base": 3})[1])
    assert scores(folder)["s01"] == "1" and group_of(state, W1, "s01")["raw"] == 3  # the page shows the clamp
    assert state["questions"][0]["scored"] == 3
    status, text, _ = request(server, "POST", "/api/score", {"question": W1, "members": ["s01"], "base": "lots"})
    assert status == 409 and "number" in json.loads(text)["error"] and scores(folder)["s01"] == "1"


def test_editing_a_rubric_item_scores_again_every_answer_that_used_it(server):
    folder = server.review.folder
    item = {"question": W1, "text": "names [UNK]", "points": 0.25}
    state = json.loads(request(server, "POST", "/api/rubric", item)[1])
    [item] = state["questions"][0]["rubric"]
    request(server, "POST", "/api/score", {"question": W1, "members": ["s01"], "items": [item["id"]]})
    request(server, "POST", "/api/score", {"question": W1, "members": ["s02"], "base": 0.5, "items": [item["id"]]})
    request(server, "POST", "/api/score", {"question": W1, "members": ["s03"], "base": 0.5})
    assert {k: scores(folder)[k] for k in ("s01", "s02", "s03")} == {"s01": "0.25", "s02": "0.75", "s03": "0.5"}
    request(server, "POST", "/api/rubric", {"question": W1, "id": item["id"], "text": "names [UNK]", "points": 0.75})
    assert {k: scores(folder)[k] for k in ("s01", "s02", "s03")} == {"s01": "0.75", "s02": "1", "s03": "0.5"}
    request(server, "POST", "/api/rubric", {"question": W1, "id": item["id"], "text": "wrong", "points": -1})
    assert {k: scores(folder)[k] for k in ("s01", "s02", "s03")} == {"s01": "0", "s02": "0", "s03": "0.5"}
    rubric = json.loads((folder / "rubric.json").read_text())
    assert rubric["questions"][W1]["answers"]["s02"] == {"base": 0.5, "items": [item["id"]]}


def test_a_rubric_item_adds_to_a_score_typed_in_the_spreadsheet(server):
    folder = server.review.folder
    text = (folder / "written.csv").read_text()
    (folder / "written.csv").write_text(text.replace(f"s05,lab1,{W1},1.0,,", f"s05,lab1,{W1},1.0,0.5,"))
    assert scores(folder)["s05"] == "0.5"
    text = (folder / "written.csv").read_text()  # and the student replaced the file since: the check is shown
    (folder / "written.csv").write_text(text.replace("case 39595.\",,", "case 39595.\",please read again,"))
    assert group_of(server.review.state(), W1, "s05")["check"] == "please read again"
    request(server, "POST", "/api/rubric", {"question": W1, "text": "cites the table", "points": 0.25})
    request(server, "POST", "/api/score", {"question": W1, "members": ["s05"], "items": ["1"]})
    assert scores(folder)["s05"] == "0.75" and group_of(server.review.state(), W1, "s05")["check"] == ""


def test_saves_are_atomic_and_read_from_disk_first(server):
    folder = server.review.folder
    request(server, "POST", "/api/score", {"question": W1, "members": ["s01"], "base": 1})
    rows = read_csv(folder / "written.csv")  # a spreadsheet saves another score meanwhile
    for row in rows:
        if (row["submission"], row["question"]) == ("s02", W2):
            row["score"] = "0.5"
    header = list(rows[0])
    (folder / "written.csv").write_text(",".join(header) + "\n" + "".join(
        ",".join(json.dumps(row[c]) if row[c] else "" for c in header) + "\n" for row in rows))
    request(server, "POST", "/api/score", {"question": W1, "members": ["s03"], "base": 0})
    assert scores(folder)["s01"] == "1" and scores(folder)["s03"] == "0" and scores(folder, W2)["s02"] == "0.5"
    assert not list(folder.glob(".*.tmp"))  # no half-written file left behind
    fresh = Review(folder, SOLUTIONS).state()  # a restarted server (or a reloaded page) finds every score
    assert group_of(fresh, W1, "s01")["score"] == 1 and group_of(fresh, W2, "s02")["score"] == 0.5
    summary = {r["submission"]: r for r in read_csv(folder / "summary.csv")}
    assert float(summary["s01"]["score"]) == 13 and float(summary["s03"]["score"]) == 12  # the derived files follow


def test_two_clients_saving_at_once_keep_both_scores(server):
    def client(question: str) -> None:
        for i in range(6):
            request(server, "POST", "/api/score", {"question": question, "members": [f"s{i:02}"], "base": 0.5})
    threads = [threading.Thread(target=client, args=(q,)) for q in (W1, W2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [scores(server.review.folder, q)[f"s{i:02}"] for q in (W1, W2) for i in range(6)] == ["0.5"] * 12


def test_a_comment_reaches_the_feedback_page_escaped_and_a_private_note_does_not(server):
    comment = "Good, but <b>why</b> one vector? & see chapter 4"
    written = server.review.folder / "written.csv"
    rows = read_csv(written)
    for row in rows:  # the instructor's own note, typed in a spreadsheet: never the student's to read
        row["note"] = "looks like s05's answer" if row["submission"] == "s04" else row["note"]
    with written.open("w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    request(server, "POST", "/api/score", {"question": W1, "members": ["s04"], "base": 1, "comment": comment})
    page = (server.review.folder / "feedback" / feedback_file("s04")).read_text()
    assert "Good, but &lt;b&gt;why&lt;/b&gt; one vector? &amp; see chapter 4" in page and "<b>why" not in page
    assert "s05" not in page
    row = {r["submission"]: r for r in read_csv(written) if r["question"] == W1}["s04"]
    assert row["comment"] == comment and row["note"] == "looks like s05's answer"


def test_nothing_is_written_outside_the_output_folder(server, tmp_path):
    def snapshot(root: Path) -> dict[str, int]:
        return {str(p): p.stat().st_mtime_ns for p in root.rglob("*") if server.review.folder not in p.parents
                and p != server.review.folder}
    before, solutions = snapshot(tmp_path), snapshot(SOLUTIONS / "lab1")
    request(server, "POST", "/api/rubric", {"question": W1, "text": "x", "points": 0.5})
    request(server, "POST", "/api/score", {"question": W1, "members": ["s01"], "items": ["1"], "comment": "ok"})
    request(server, "GET", "/similarity")
    assert snapshot(tmp_path) == before and snapshot(SOLUTIONS / "lab1") == solutions
    assert {p.name for p in server.review.folder.iterdir()} == {"grading.json", "written.csv", "grades.csv",
                                                                "summary.csv", "feedback", "rubric.json"}


def test_the_similarity_tab_shows_the_report_and_leads_back(server):
    status, page, headers = request(server, "GET", "/similarity")
    assert status == 200 and "<script" not in headers["Content-Security-Policy"]
    assert "script-src" not in headers["Content-Security-Policy"]  # no script runs in the report's page
    assert "Answers that look alike" in page and "Back to the written answers" in page
    assert f"token={server.token}" in page  # the way back keeps the token


def test_export_refuses_unscored_answers_then_exports_the_scores_entered(tmp_path, capsys):
    ids = {"doejane_12345_1_lab1": "12345", "smithjohn_12346_2_lab1": "12346"}
    folder = graded_folder(tmp_path / "out", {name: {W1: f"rare words {name}", W2: f"no gradient {name}"}
                                              for name in ids}, ids)
    roster = tmp_path / "roster.csv"
    roster.write_text(CANVAS_ROSTER.read_text().replace("Lab 1 (4101)", "lab1 (4101)")
                      .replace("12.00,10.00", "14.00,10.00"))  # lab1 is out of 14 points
    command = ["export", str(folder), "--format", "canvas", "--roster", str(roster), "--skip-unknown"]
    assert main(command) == 2 and "4 written answer(s) have no score" in capsys.readouterr().err
    review = Review(folder, SOLUTIONS)
    for name in ids:
        review.score(W1, [name], {"base": 1})
    assert main(command) == 2 and "2 written answer(s) have no score" in capsys.readouterr().err
    for name in ids:
        review.score(W2, [name], {"base": 0.5})
    assert main(command) == 0
    exported = {r["ID"]: r["lab1 (4101)"] for r in read_csv(folder / "canvas-lab1.csv") if r["ID"]}
    assert exported["12345"] == exported["12346"] == "13.5"
    assert read_table(folder / "summary.csv")[1][0]["status"] == "graded"


def test_the_review_command_prints_its_address_and_opens_no_browser_when_told(folder, monkeypatch, capsys):
    opened = []
    monkeypatch.setattr("webbrowser.open", opened.append)
    monkeypatch.setattr(ReviewServer, "serve_forever", lambda self: (_ for _ in ()).throw(KeyboardInterrupt))
    assert main(["review", str(folder), "--solutions", str(SOLUTIONS), "--no-browser"]) == 0
    out = capsys.readouterr().out
    assert "http://127.0.0.1:" in out and "?token=" in out and opened == []
    assert main(["review", str(folder), "--solutions", str(SOLUTIONS)]) == 0
    assert len(opened) == 1 and opened[0] in capsys.readouterr().out
    assert main(["review", str(folder.parent / "nothing"), "--no-browser"]) == 2
    assert "not a grading output folder" in capsys.readouterr().err


def test_the_labs_page_lists_the_keys_the_page_answers_to():
    import re

    page = (ROOT / "book" / "labs.md").read_text()
    section = page[page.index("### Scoring written answers in the browser"):]
    table = [line.split("|")[1] for line in section.split("\n###")[0].splitlines() if line.startswith("| `")]
    keys = {k for cell in table for k in re.findall(r"`([^`]+)`", cell)} - {"Enter", "Esc", "Tab", "1", "9"}
    script = (ROOT / "utils" / "grading" / "review_assets" / "review.js").read_text()
    handled = set(re.findall(r'^\s+(?:"(.)"|(\w+)): \(?', script, re.MULTILINE))
    handled = {a or b for a, b in handled}
    assert keys and keys <= handled | {"arrow keys"}, keys - handled
