"""Intake: turn what an instructor was handed (notebooks, folders, or the zip of an LMS's "download all
submissions") into the submissions to grade, one per student.

Archives are read the way the LMSs write them (the naming rules are in ID_PRESETS, utils/grading/lms.py):

- Canvas "Download Submissions": flat files `<sortable name>[_LATE]_<user id>_<file id>_<file name>`, the name
  lower-cased and stripped of everything but letters, digits and _ (lib/content_zipper.rb). A re-upload of a file
  of the same name gets a suffix (`lab1-1.ipynb`) and a higher file id.
- Moodle "Download all submissions": `<full name>_<participant id>_assignsubmission_file_<file name>`, or, with
  "Download submissions in folders" (the default since 3.1), a folder
  `<full name>_<participant id>_assignsubmission_file` per student (mod/assign/classes/downloader.php).

Like nbgrader's `zip_collect`, the student is found by a regular expression on each file's name. Members are never
written under their own names: each is copied, at most `MAX_BYTES` + 1 bytes of it, to a numbered file in a scratch
folder, so no name (`..`, absolute, a link, too long for the file system, undecodable) can reach outside it or stop
the run; the member's path in the archive, without `.ipynb`, is the submission's name, the same on every run.
"""

from __future__ import annotations

import atexit
import re
import shutil
import stat
import sys
import tempfile
import time
import unicodedata
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from utils.grading.gradebook import Submission, UsageError, collect_submissions
from utils.grading.lms import ID_PRESETS, canvas_late, compile_id_pattern
from utils.grading.submission import MAX_BYTES

#: An archive with more members than this is refused (a class of a thousand, a few files each, has far fewer).
MAX_MEMBERS = 10_000
#: The notebooks of one archive may unpack to this many bytes at most (their sizes as the archive declares them).
MAX_UNPACKED = 4 * 2**30
#: Notebooks that unpack to more than RATIO_FLOOR bytes may be at most MAX_RATIO times their compressed size:
#: notebooks compress 2 to 20 times, a zip bomb a thousand times.
MAX_RATIO, RATIO_FLOOR = 100, 64 * 2**20
#: Bit 11 of a zip member's flags: its name is UTF-8 (APPNOTE 4.4.4); without it, the name is in code page 437.
UTF8_FLAG = 0x800
#: The rule that picks one notebook when a student has several, as the notes state it.
PICK_RULE = ("a notebook named after the lab first, then the newest upload (Canvas: the highest file id; Moodle "
             "and folders: the latest modification time), then the last one listed")
_UNPACK_YOURSELF = "If you trust it, unpack it yourself (unzip) and pass the folder to grade instead"
_PATTERNS = {lms: compile_id_pattern(lms) for lms in ID_PRESETS}


@dataclass(frozen=True)
class Found:
    """A notebook found in the inputs, before one is picked per student."""

    name: str
    path: Path
    origin: str                # where it came from, for the notes: the archive and member, or the file
    recency: float = 0.0       # larger is newer: Canvas's file id, else a modification time
    order: tuple[int, int] = (0, 0)  # (input, position in it): the last one listed wins a tie


@dataclass
class Intake:
    """The submissions to grade, what the instructor should know about the inputs, and which ones are late."""

    submissions: list[Submission]
    notes: list[str]
    late: list[str]            # names of submissions the LMS marked late (Canvas's _LATE_)


def student_of(name: str) -> tuple[str, str, str] | None:
    """(lms, student id, the student's own file name) for a name an LMS gave a submission, else None."""
    for lms, pattern in _PATTERNS.items():
        match = pattern.search(name)
        if match:
            rest = name[match.end():]
            own = rest.rsplit("/", 1)[-1] if "/" in rest else rest.split("_", 1)[-1] if lms == "moodle" else rest
            return lms, match.group("id"), own
    return None


def clean_name(name: str) -> str:
    """A submission name as text that any CSV or page can hold: NFC, undecodable bytes shown as \\xNN."""
    return unicodedata.normalize("NFC", name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace"))


def member_name(info: zipfile.ZipInfo) -> str:
    """The member's name as its maker meant it: UTF-8 when flagged or when the bytes are valid UTF-8 (as most
    tools write without the flag), else code page 437, the zip format's default."""
    if info.flag_bits & UTF8_FLAG:
        return info.filename
    raw = info.filename.encode("cp437")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return info.filename


def _unsafe(name: str) -> str:
    """Why a member's path cannot name a submission ('' if it can): absolute, climbing out, or empty parts."""
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        return "an absolute path"
    parts = name.split("/")
    if ".." in parts:
        return "a path that climbs out of the archive (..)"
    if any(part in ("", ".") for part in parts) or "\0" in name:
        return "a malformed path"
    return ""


def _kind_problem(info: zipfile.ZipInfo) -> str:
    """Why a member is not a plain file to read ('' if it is): a link, a device, an encrypted file."""
    mode = info.external_attr >> 16
    if info.create_system == 3 and stat.S_IFMT(mode) and not stat.S_ISREG(mode):
        return "a symbolic link, not a file" if stat.S_ISLNK(mode) else "not a regular file"
    if info.flag_bits & 0x1:
        return "encrypted"
    return ""


def _size(count: int) -> str:
    """Bytes for a message: 4 GiB, 1.5 MiB, 700 bytes."""
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if count >= scale:
            return f"{count / scale:.3g} {unit}"
    return f"{count} bytes"


def _check_bomb(archive: Path, infos: list[zipfile.ZipInfo]) -> None:
    """Refuse an archive whose notebooks would unpack to too much, or that expands like a zip bomb."""
    unpacked = sum(i.file_size for i in infos)
    packed = sum(i.compress_size for i in infos)
    if unpacked > MAX_UNPACKED:
        raise UsageError(f"{archive}: its notebooks would unpack to {_size(unpacked)}, more than the limit of "
                         f"{_size(MAX_UNPACKED)} (MAX_UNPACKED). {_UNPACK_YOURSELF}.")
    if unpacked > RATIO_FLOOR and unpacked > MAX_RATIO * max(packed, 1):
        raise UsageError(f"{archive}: its notebooks would unpack to {unpacked // max(packed, 1)} times their "
                         f"compressed size, more than the limit of {MAX_RATIO} (MAX_RATIO): this looks like a zip "
                         f"bomb, not notebooks. {_UNPACK_YOURSELF}.")


def _copy_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path) -> str:
    """Copy at most MAX_BYTES + 1 bytes of a member to `target` (a larger notebook is refused by the grader
    anyway); returns a problem ('' if none). What could be read is kept, so the submission still gets its row."""
    left = MAX_BYTES + 1
    with target.open("wb") as out:
        try:
            with archive.open(info) as member:
                while left > 0:
                    chunk = member.read(min(left, 2**20))
                    if not chunk:
                        break
                    out.write(chunk)
                    left -= len(chunk)
        except (zipfile.BadZipFile, zlib.error, NotImplementedError, RuntimeError, EOFError, OSError) as error:
            return f"could not be unpacked ({error}): graded from what could be read"
    return ""


def _zip_time(info: zipfile.ZipInfo) -> float:
    """A member's modification time in seconds (0 when the archive holds no valid date)."""
    try:
        return time.mktime(info.date_time + (0, 0, -1))
    except (OverflowError, ValueError):
        return 0.0


def _recency(name: str, modified: float) -> float:
    """How new a file is: Canvas's file id (it grows with every upload), else its modification time."""
    found = student_of(name)
    if found and found[0] == "canvas":
        match = _PATTERNS["canvas"].search(name)
        return float(match.group(0).rstrip("_").rsplit("_", 1)[-1])
    return modified


def unpack(archive: Path, scratch: Path, index: int) -> tuple[list[Found], list[str], list[str]]:
    """The notebooks of a zip archive copied into `scratch`, notes on the members skipped, and their names."""
    try:
        opened = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as error:
        raise UsageError(f"{archive} is not a zip archive that can be read ({error})") from None
    except UnicodeDecodeError:
        raise UsageError(f"{archive}: some member names are marked UTF-8 but are not: no LMS writes such an "
                         f"archive. {_UNPACK_YOURSELF}.") from None
    found, notes, notebooks, skipped = [], [], [], []
    with opened:
        infos = opened.infolist()
        if len(infos) > MAX_MEMBERS:
            raise UsageError(f"{archive} has {len(infos)} members, more than the limit of {MAX_MEMBERS} "
                             f"(MAX_MEMBERS). {_UNPACK_YOURSELF}.")
        for info in infos:
            name = clean_name(member_name(info).replace("\\", "/"))
            if info.is_dir():
                continue
            problem = _unsafe(name) or _kind_problem(info)
            if not problem and any(p.startswith(".") or p == "__MACOSX" for p in name.split("/")):
                problem = "a hidden or system file"
            if not problem and not name.lower().endswith(".ipynb"):
                problem = "not a notebook (.ipynb)"
            if problem:
                skipped.append(name)
                notes.append(f"{archive.name}: skipped {name!r}: {problem}")
            else:
                notebooks.append((name, info))
        _check_bomb(archive, [info for _, info in notebooks])
        folder = scratch / f"{index}"
        folder.mkdir()
        for position, (name, info) in enumerate(notebooks):
            target = folder / f"{position}.ipynb"
            problem = _copy_member(opened, info, target)
            if problem:
                notes.append(f"{archive.name}: {name!r} {problem}")
            found.append(Found(name[: -len(".ipynb")], target, f"{archive.name}: {name}",
                               _recency(name, _zip_time(info)), (index, position)))
    return found, notes, skipped


def _from_path(path: Path, index: int) -> tuple[list[Found], list[str]]:
    """The notebooks of a file or folder given on the command line, named as `collect_submissions` names them, and
    a note for each zip archive in a folder (only archives given themselves are unpacked)."""
    notes = [f"{archive}: a zip archive inside a folder is not unpacked: give the archive itself to grade it"
             for archive in (sorted(path.rglob("*.zip")) if path.is_dir() else [])]
    found = []
    for position, submission in enumerate(collect_submissions([path])):
        name = clean_name(submission.name)
        try:
            modified = submission.path.stat().st_mtime
        except OSError:
            modified = 0.0
        found.append(Found(name, submission.path, str(submission.path), _recency(name, modified), (index, position)))
    return found, notes


def _named_after(own: str, lab: str | None) -> bool:
    """Whether a student's file name is the lab's, maybe renamed by a re-upload (lab1-1, lab1 (2), Lab1)."""
    stem = own[: -len(".ipynb")] if own.lower().endswith(".ipynb") else own
    return bool(lab) and re.fullmatch(rf"{re.escape(lab)}(?:-\d+| ?\(\d+\))?", stem, re.IGNORECASE) is not None


def pick_one_per_student(found: list[Found], lab: str | None) -> tuple[list[Found], list[str]]:
    """Keep one notebook per student the LMS names (by PICK_RULE); files no LMS named are all kept."""
    groups: dict[tuple[str, str], list[Found]] = {}
    kept: list[Found] = []
    for item in found:
        student = student_of(item.name)
        if student:
            groups.setdefault(student[:2], []).append(item)
        else:
            kept.append(item)
    notes = []
    for (lms, sid), items in groups.items():
        rank = lambda f: (_named_after(student_of(f.name)[2], lab), f.recency, f.order)
        chosen = max(items, key=rank)
        kept.append(chosen)
        if len(items) > 1:
            others = ", ".join(repr(f.origin) for f in sorted(items, key=rank, reverse=True)[1:])
            notes.append(f"{lms} student {sid} has {len(items)} notebooks: grading {chosen.origin!r}, not {others} "
                         f"(rule: {PICK_RULE})")
    return sorted(kept, key=lambda f: f.order), notes


def _unique_names(found: list[Found]) -> list[Submission]:
    """Submissions with distinct names (a repeated name gets -2, -3, ... in the order given), with the student id
    of the name an LMS gave (`grade --id-pattern` replaces it)."""
    names: set[str] = set()
    submissions = []
    for item in found:
        unique, n = item.name, 1
        while unique in names:
            n += 1
            unique = f"{item.name}-{n}"
        names.add(unique)
        student = student_of(item.name)
        submissions.append(Submission(unique, item.path, student[1] if student else ""))
    return submissions


def _scratch() -> Path:
    """A private folder for unpacked archives, removed when the process ends."""
    folder = Path(tempfile.mkdtemp(prefix="grading-intake-"))
    atexit.register(shutil.rmtree, folder, True)
    return folder


def take_in(paths: list[Path], lab: str | None = None, scratch: Path | None = None) -> Intake:
    """The submissions in `paths` (notebooks, folders, zip archives from Canvas or Moodle), one per student."""
    found: list[Found] = []
    notes: list[str] = []
    skipped: list[str] = []
    for index, path in enumerate(paths):
        if path.is_file() and path.suffix.lower() == ".zip":
            scratch = scratch or _scratch()
            items, problems, names = unpack(path, scratch, index)
            found += items
            notes += problems
            skipped += names
        else:
            items, problems = _from_path(path, index)
            found += items
            notes += problems
    seen: set[Path] = set()
    distinct = []
    for item in found:  # the same file given twice (a folder and a file in it) is one submission
        if item.path.resolve() not in seen:
            seen.add(item.path.resolve())
            distinct.append(item)
    kept, picked = pick_one_per_student(distinct, lab)
    submissions = _unique_names(kept)
    graded = {student_of(s.name)[:2] for s in submissions if student_of(s.name)}
    for lms, sid in dict.fromkeys(student_of(n)[:2] for n in skipped if student_of(n)):
        if (lms, sid) not in graded:
            notes.append(f"{lms} student {sid} submitted no notebook (only the files skipped above): not graded, "
                         f"no row in the gradebook")
    late = [s.name for s in submissions if canvas_late(s.name)]
    if late:
        notes.append(f"{len(late)} submission(s) marked LATE by Canvas, e.g. {late[0]!r} (the name keeps _LATE_)")
    return Intake(submissions, notes + picked, late)


def submissions_to_grade(paths: list[Path], lab: str | None = None) -> list[Submission]:
    """`take_in` for the command line: the notes go to standard error."""
    intake = take_in(paths, lab)
    for note in intake.notes:
        print(f"note: {note}", file=sys.stderr)
    return intake.submissions
