"""Intake of an LMS's download (utils/grading/intake.py): archives built as Canvas and Moodle build them, hostile
archives, and `grade` run on a zip.

Format rules, from the LMSs' own code:
- Canvas (lib/content_zipper.rb, `get_filename` and `add_upload_submission`): `[sortable name lower-cased, "LATE"
  if late, user id].join("_")` stripped of every character that is not a letter, digit or underscore, then
  `_<attachment id>_<display name>`; rubyzip writes names as UTF-8 bytes without the UTF-8 flag. Canvas renames a
  re-upload of the same file `lab1-1.ipynb`, with a new, higher attachment id.
- Moodle (mod/assign/classes/downloader.php): prefix `<full name, _ as space>_<participant id>`; flat:
  `<prefix>_assignsubmission_file_<file name>`, in folders (the default): `<prefix>_assignsubmission_file/<path>`;
  Moodle's zip writer flags non-ASCII names as UTF-8.
"""

from __future__ import annotations

import io
import os
import re
import stat
import zipfile
from pathlib import Path

import pytest

from utils.grading import intake
from utils.grading.cli import main
from utils.grading.gradebook import UsageError
from utils.grading.intake import student_of, take_in
from utils.grading.lms import canvas_late
from utils.grading.lms import read_csv
from utils.grading.release import release_all

FIXTURES = Path(__file__).parent / "fixtures" / "grading" / "solutions"
SOLUTION = (FIXTURES / "labdemo" / "labdemo.ipynb").read_bytes()


def canvas_name(sortable: str, user_id: int, file_id: int, display: str, late: bool = False) -> str:
    """A member name as Canvas's ContentZipper builds it."""
    user = re.sub(r"_(\d+)_", r"\1", sortable).lower()
    prefix = re.sub(r"[^\w]", "", "_".join([user] + (["LATE"] if late else []) + [str(user_id)]))
    return f"{prefix}_{file_id}_" + re.sub(r'[\x00/\\:*?"<>|]+', "_", display)


def moodle_name(fullname: str, participant: int, path: str, folders: bool = True) -> str:
    """A member name as Moodle's assign downloader builds it (clean_filename leaves these names as they are)."""
    prefix = f"{fullname.replace('_', ' ')}_{participant}"
    return f"{prefix}_assignsubmission_file/{path}" if folders else f"{prefix}_assignsubmission_file_{path}"


def build_zip(path: Path, members: dict[str, bytes], *, utf8_flag: bool = True) -> Path:
    """A zip of `members`; utf8_flag=False stores non-ASCII names as raw UTF-8 bytes without the flag (rubyzip)."""
    buffer = io.BytesIO()
    placeholders = {}
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for n, (name, data) in enumerate(members.items()):
            raw = name.encode("utf-8")
            if not utf8_flag and not name.isascii():  # same length, ASCII, swapped for the raw bytes below
                placeholder = f"@{n}@".ljust(len(raw), "#").encode()
                placeholders[placeholder] = raw
                name = placeholder.decode()
            archive.writestr(name, data)
    data = buffer.getvalue()
    for placeholder, raw in placeholders.items():
        assert data.count(placeholder) == 2  # the member's local header and its central directory entry
        data = data.replace(placeholder, raw)
    path.write_bytes(data)
    return path


def names(result) -> list[str]:
    return [s.name for s in result.submissions]


# ------------------------------------------------------------------------------------------ as the LMSs write them


def test_a_canvas_download_gives_one_submission_per_student_with_its_id_and_late_flag(tmp_path):
    first = canvas_name("Doe, Jane", 12345, 678901, "labdemo.ipynb")
    again = canvas_name("Doe, Jane", 12345, 679100, "labdemo-1.ipynb", late=True)  # re-uploaded after the deadline
    assert (first, again) == ("doejane_12345_678901_labdemo.ipynb", "doejane_LATE_12345_679100_labdemo-1.ipynb")
    members = {first: b"{}", again: b"{}",
               canvas_name("Müller, Jürgen", 12346, 678902, "labdemo.ipynb"): b"{}",
               canvas_name("Lee, Ana", 12347, 678903, "labdemo.pdf"): b"%PDF",
               canvas_name("Okafor, Chidi", 12348, 678904, "Untitled.ipynb"): b"{}",
               canvas_name("Okafor, Chidi", 12348, 678800, "labdemo.ipynb"): b"{}"}
    result = take_in([build_zip(tmp_path / "submissions.zip", members, utf8_flag=False)], "labdemo")
    assert names(result) == ["doejane_LATE_12345_679100_labdemo-1", "müllerjürgen_12346_678902_labdemo",
                             "okaforchidi_12348_678800_labdemo"]
    assert [student_of(n)[:2] for n in names(result)] == [("canvas", "12345"), ("canvas", "12346"),
                                                         ("canvas", "12348")]
    assert [s.id for s in result.submissions] == ["12345", "12346", "12348"]
    assert result.late == ["doejane_LATE_12345_679100_labdemo-1"] and not canvas_late(names(result)[1])
    notes = "\n".join(result.notes)
    assert "student 12345 has 2 notebooks" in notes and "not 'submissions.zip: doejane_12345_678901" in notes
    assert "not 'submissions.zip: okaforchidi_12348_678904_Untitled.ipynb'" in notes  # the lab's name beats newer
    assert "leeana_12347_678903_labdemo.pdf': not a notebook" in notes
    assert "student 12347 submitted no notebook" in notes
    assert all(s.path.read_bytes() == b"{}" for s in result.submissions)


@pytest.mark.parametrize("folders", [True, False], ids=["in-folders", "flat"])
def test_a_moodle_download_gives_one_submission_per_participant(tmp_path, folders):
    members = {moodle_name("Jane Doe", 1234567, "labdemo.ipynb", folders): b"1",
               moodle_name("José Núñez_García", 1234568, "labdemo.ipynb", folders): b"2",
               moodle_name("Ana Lee", 1234569, "scratch.ipynb", folders): b"3",
               moodle_name("Ana Lee", 1234569, "labdemo (1).ipynb", folders): b"4",
               moodle_name("Ana Lee", 1234569, "report.docx", folders): b"5"}
    result = take_in([build_zip(tmp_path / "NLP-Lab demo-42.zip", members)], "labdemo")
    assert [s.id for s in result.submissions] == ["1234567", "1234568", "1234569"]
    separator = "/" if folders else "_"
    assert names(result)[1] == f"José Núñez García_1234568_assignsubmission_file{separator}labdemo"
    assert result.submissions[2].path.read_bytes() == b"4" and not result.late
    assert any("student 1234569 has 2 notebooks" in n for n in result.notes)
    assert any("report.docx': not a notebook" in n for n in result.notes)


def test_names_are_the_same_on_every_run_and_as_from_the_unpacked_folder(tmp_path):
    members = {canvas_name(f"Student{i:03d}, Ann", 20000 + i, 700000 + i, "labdemo.ipynb"): b"{}" for i in range(30)}
    archive = build_zip(tmp_path / "download.zip", members)
    first, second = take_in([archive], "labdemo"), take_in([archive], "labdemo")
    assert names(first) == names(second) == [m.removesuffix(".ipynb") for m in members]
    folder = tmp_path / "unzipped"
    zipfile.ZipFile(archive).extractall(folder)
    assert names(take_in([folder], "labdemo")) == names(first)


def test_the_same_download_twice_still_gives_one_submission_per_student(tmp_path):
    old = build_zip(tmp_path / "monday.zip", {canvas_name("Doe, Jane", 12345, 1, "labdemo.ipynb"): b"old"})
    new = build_zip(tmp_path / "friday.zip", {canvas_name("Doe, Jane", 12345, 1, "labdemo.ipynb"): b"old",
                                              canvas_name("Doe, Jane", 12345, 9, "labdemo-1.ipynb", late=True): b"new"})
    result = take_in([old, new], "labdemo")
    assert names(result) == ["doejane_LATE_12345_9_labdemo-1"] and result.submissions[0].path.read_bytes() == b"new"


# ---------------------------------------------------------------------------------------------- hostile archives


def test_paths_that_escape_and_links_are_skipped_with_a_note_and_nothing_is_written_outside(tmp_path):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in ["../../escaped.ipynb", "/tmp/absolute.ipynb", "a/./b.ipynb", "C:/windows.ipynb",
                     "..\\..\\backslashed.ipynb", "ok_1_2_labdemo.ipynb", ".hidden.ipynb", "__MACOSX/._x.ipynb"]:
            archive.writestr(name, b"{}")
        link = zipfile.ZipInfo("link_3_4_labdemo.ipynb")
        link.create_system, link.external_attr = 3, (stat.S_IFLNK | 0o777) << 16
        archive.writestr(link, "../../../solutions/labdemo/labdemo.ipynb")
    (tmp_path / "hostile.zip").write_bytes(buffer.getvalue())
    result = take_in([tmp_path / "hostile.zip"], "labdemo", scratch=scratch)
    assert names(result) == ["ok_1_2_labdemo"]
    notes = "\n".join(result.notes)
    for name, why in [("../../escaped.ipynb", "climbs out"), ("/tmp/absolute.ipynb", "absolute"),
                      ("a/./b.ipynb", "malformed"), ("C:/windows.ipynb", "absolute"),
                      ("../../backslashed.ipynb", "climbs out"), (".hidden.ipynb", "hidden"),
                      ("link_3_4_labdemo.ipynb", "symbolic link")]:
        assert re.search(rf"{re.escape(repr(name))}: [^\n]*{why}", notes), name
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert sorted(p.relative_to(tmp_path).as_posix() for p in written) == ["hostile.zip", "scratch/0/0.ipynb"]
    assert not any(p.is_symlink() for p in scratch.rglob("*"))


@pytest.mark.parametrize("limit, value, members, expected", [
    ("MAX_MEMBERS", 20, {f"s{i}_{i}_1_labdemo.ipynb": b"{}" for i in range(21)},
     "21 members, more than the limit of 20"),
    ("MAX_UNPACKED", 2**20, {"big_1_1_labdemo.ipynb": b" " * (2**20 + 1)},
     "would unpack to 1 MiB, more than the limit of 1 MiB"),
    ("RATIO_FLOOR", 2**20, {"bomb_1_1_labdemo.ipynb": b"\0" * (4 * 2**20)}, "more than the limit of 100 (MAX_RATIO)"),
], ids=["members", "size", "ratio"])
def test_archive_bombs_are_refused_with_the_limit_named(tmp_path, monkeypatch, limit, value, members, expected):
    monkeypatch.setattr(intake, limit, value)  # the real limits are GiB: the same checks, on a small archive
    archive = build_zip(tmp_path / "bomb.zip", members)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    with pytest.raises(UsageError, match=re.escape(expected)) as refused:
        take_in([archive], "labdemo", scratch=scratch)
    assert f"({limit})" in str(refused.value) or limit == "RATIO_FLOOR"
    assert "unpack it yourself" in str(refused.value) and not any(scratch.iterdir())


def test_the_labs_page_states_the_limits_the_code_applies():
    page = " ".join((Path(__file__).resolve().parents[1] / "book" / "labs.md").read_text().split())
    assert "Grading an LMS download directly" in page
    stated = (f"more than {intake.MAX_MEMBERS:,} members", f"more than {intake._size(intake.MAX_UNPACKED)}",
              f"(past {intake._size(intake.RATIO_FLOOR)}) to more than {intake.MAX_RATIO} times")
    assert all(claim in page for claim in stated), stated


def test_a_member_larger_than_a_notebook_may_be_is_copied_only_up_to_the_graders_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(intake, "MAX_BYTES", 1000)
    result = take_in([build_zip(tmp_path / "a.zip", {"huge_1_1_labdemo.ipynb": b"x" * 50_000})], "labdemo")
    assert result.submissions[0].path.stat().st_size == 1001  # the grader then says: larger than the limit


def test_duplicate_member_names_give_one_row_each_or_one_per_student(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive, pytest.warns(UserWarning, match="Duplicate name"):
        for name, data in [("labdemo.ipynb", b"1"), ("labdemo.ipynb", b"2"),
                           ("doejane_12345_1_labdemo.ipynb", b"3"), ("doejane_12345_1_labdemo.ipynb", b"4")]:
            archive.writestr(name, data)
    (tmp_path / "dup.zip").write_bytes(buffer.getvalue())
    result = take_in([tmp_path / "dup.zip"], "labdemo")
    assert names(result) == ["labdemo", "labdemo-2", "doejane_12345_1_labdemo"]
    assert [s.path.read_bytes() for s in result.submissions] == [b"1", b"2", b"4"]  # the last one listed, as unzip
    assert any("student 12345 has 2 notebooks" in n for n in result.notes)


def test_names_in_other_encodings_are_kept_as_rows(tmp_path):
    utf8 = "müller_12345_1_labdemo.ipynb"
    latin1 = build_zip(tmp_path / "latin1.zip", {"m_ller_12346_1_labdemo.ipynb": b"{}"})  # no flag, ISO-8859-1
    latin1.write_bytes(latin1.read_bytes().replace(b"m_ller_", b"m\xfcller_"))
    result = take_in([build_zip(tmp_path / "rubyzip.zip", {utf8: b"{}"}, utf8_flag=False), latin1], "labdemo")
    assert names(result)[0] == "müller_12345_1_labdemo"  # UTF-8 without the flag, as rubyzip writes it
    assert names(result)[1] == "m" + b"\xfc".decode("cp437") + "ller_12346_1_labdemo"  # the zip format's code page
    flagged = build_zip(tmp_path / "flagged.zip", {"mü_12347_1_labdemo.ipynb": b"{}"})  # the flag, then bad bytes
    flagged.write_bytes(flagged.read_bytes().replace("mü".encode(), b"m\xfc\xfc"))
    with pytest.raises(UsageError, match="marked UTF-8 but are not.*unpack it yourself"):
        take_in([flagged], "labdemo")


def test_a_folder_with_undecodable_or_very_long_names_gives_text_names(tmp_path):
    folder = tmp_path / "subs"
    folder.mkdir()
    Path(os.fsdecode(bytes(folder) + b"/m\xfcller_12345_1_labdemo.ipynb")).write_bytes(b"{}")  # ISO-8859-1 on disk
    long_name = "ü" * 120 + "_12346_1_labdemo.ipynb"  # 262 bytes in the archive: more than a file name may have
    archive = build_zip(tmp_path / "long.zip", {long_name: b"{}"})
    build_zip(folder / "forgotten.zip", {"x_12347_1_labdemo.ipynb": b"{}"})
    result = take_in([folder, archive], "labdemo")
    assert names(result) == ["m\\xfcller_12345_1_labdemo", long_name.removesuffix(".ipynb")]
    assert any("forgotten.zip: a zip archive inside a folder is not unpacked" in note for note in result.notes)
    assert names(result)[0].encode("utf-8") and result.submissions[1].path.read_bytes() == b"{}"


def test_a_file_that_is_not_a_zip_is_refused(tmp_path):
    (tmp_path / "download.zip").write_bytes(b"<html>Your download will start shortly</html>")
    with pytest.raises(UsageError, match="not a zip archive"):
        take_in([tmp_path / "download.zip"], "labdemo")


# --------------------------------------------------------------------------------------------- grade on a zip


def test_grade_reads_a_canvas_zip_end_to_end(tmp_path, capsys):
    release_all(FIXTURES, tmp_path / "labs")
    released = (tmp_path / "labs" / "labdemo" / "labdemo.ipynb").read_bytes()
    members = {canvas_name("Doe, Jane", 12345, 678901, "labdemo.ipynb"): released,
               canvas_name("Doe, Jane", 12345, 679000, "labdemo-1.ipynb", late=True): SOLUTION,
               canvas_name("Smith, John", 12346, 678902, "labdemo.ipynb"): released,
               canvas_name("Lee, Ana", 12347, 678903, "labdemo.ipynb"): b"not a notebook",
               canvas_name("Lee, Ana", 12347, 678904, "notes.txt"): b"hello"}
    archive = build_zip(tmp_path / "Lab demo submissions.zip", members, utf8_flag=False)
    command = ["grade", "--lab", "labdemo", "--solutions", str(FIXTURES), "--out", str(tmp_path / "out"),
               "--jobs", "1", "--timeout", "20", "--quiet", str(archive)]  # ids from Canvas's names, no --id-pattern
    assert main(command) == 0
    assert "student 12345 has 2 notebooks" in capsys.readouterr().err
    summary = {row["id"]: row for row in read_csv(tmp_path / "out" / "summary.csv")}
    assert {k: (v["submission"], v["status"]) for k, v in summary.items()} == {
        "12345": ("doejane_LATE_12345_679000_labdemo-1", "needs-reading"),
        "12346": ("smithjohn_12346_678902_labdemo", "graded"),  # the released lab: nothing written
        "12347": ("leeana_12347_678903_labdemo", "invalid-notebook")}
    assert float(summary["12345"]["score"]) > float(summary["12346"]["score"]) == 0
    assert main(command) == 0  # a second run finds the same names, so everything comes from the cache
    assert read_csv(tmp_path / "out" / "summary.csv") == list(summary.values())


def test_late_is_canvas_s_mark_not_the_students_own_file_name():
    """Canvas puts _LATE_ before the user id; the same letters in the student's own file name are not a late mark,
    and grading a folder and taking in a zip decide it by the same rule."""
    assert canvas_late("doejane_LATE_12345_678901_lab1.ipynb")
    assert canvas_late("o_brienpat_LATE_12345_678901_lab1.ipynb")
    assert not canvas_late("doejane_12345_678901_my_LATE_2_draft.ipynb")
    assert not canvas_late("LATE_12_lab1.ipynb")
