"""The sandbox a submission's code runs in: bubblewrap namespaces, a private size-capped home, limits for the whole
sandbox, and a teardown that leaves no process behind.

Inside, the code sees the system (/usr, a few files of /etc), the Python installation and the course library read-
only, and a private writable tmpfs at /home/student (its working folder, HOME and TMPDIR; /tmp points there, or is a
tmpfs of its own when the Python installation lies under /tmp). Nothing else of the machine: not the repository,
solutions, the grader's output folder, other submissions or other sandboxes. It has its own PID, network (loopback
only), IPC, UTS, cgroup and user namespaces, no capabilities, no terminal (new session); it cannot create further
user namespaces, and a seccomp filter refuses the kernel interfaces exploits usually start from (bpf, io_uring,
userfaultfd, keyctl, ...).

When the grader runs as root, bubblewrap itself runs as a fresh unprivileged uid per sandbox (outside the sandbox
the processes are that uid, never root); paths that uid cannot reach (the Python installation under /root, the
grader's private scratch folder) are mirrored with hard links into /tmp/grading-sandbox-<uid>, made once and shared
by every grader process (content-keyed, so a fork server's children reuse them). Memory and process count are capped
for the whole sandbox by cgroup v1 controllers where this process may create cgroups, or by a delegated cgroup v2
subtree, by rlimits otherwise; disk by the tmpfs size (and RLIMIT_FSIZE); output by the grader's pipe, which keeps
only the first `Limits.output` bytes. `kill()` kills the sandbox's PID namespace (and its cgroup): every process the
sandbox ever started is gone when it returns. When the sandboxed command exits, bubblewrap's namespace init exits
too and the kernel kills whatever is left in the namespace (a daemon cannot outlive its command).
"""

from __future__ import annotations

import atexit
import ctypes
import errno
import fcntl
import hashlib
import json
import os
import resource
import secrets
import select
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

#: The course library (the `utils` package); sandboxes get a copy without the grader.
LIBRARY = Path(__file__).resolve().parent.parent
#: The sandboxed code's home and working folder (a private tmpfs).
HOME = "/home/student"
#: uid and gid of the code inside the sandbox (its user namespace).
INSIDE_UID = 1000
#: When the grader is root, each sandbox runs as a random uid in [UID_BASE, UID_BASE + 2**20) outside.
UID_BASE = 0x5B000000
#: Environment variables passed through to the sandbox when set (OpenBLAS needs them on some processors).
PASS_THROUGH = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
#: Files and folders of /etc the sandbox sees (when they exist); passwd and group are the sandbox's own.
ETC = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "nsswitch.conf", "hosts", "alternatives",
       "fonts", "mime.types")
#: Top-level system folders bound read-only (or re-created as the same symlinks, as on merged-/usr systems).
SYSTEM = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
#: util-linux's prlimit, which sets RLIMIT_NPROC inside the sandbox when there is no pids cgroup.
PRLIMIT = next((p for p in ("/usr/bin/prlimit", "/bin/prlimit") if os.access(p, os.X_OK)), None)
#: Open files per process in the sandbox (RLIMIT_NOFILE).
OPEN_FILES = 4096
#: Seconds after which an unused mirror of an older Python or library version is removed.
MIRROR_LIFETIME = 7 * 24 * 3600
#: The cgroup v1 controllers used for whole-sandbox limits.
CONTROLLERS = ("memory", "pids")
INSTALL_HINT = ("install the Debian package bubblewrap ('sudo apt-get install -y bubblewrap', or 'make sandbox'), "
                "or grade with --no-sandbox on a machine where no submission can do harm")


class SandboxUnavailable(RuntimeError):
    """bubblewrap is missing or cannot create namespaces here; the message says what to do."""


@dataclass(frozen=True)
class Limits:
    """Limits of one sandbox as a whole (all its processes together)."""

    #: Bytes of memory (cgroup: resident memory plus tmpfs pages; rlimit: data segment of each process); 0: no limit.
    memory: int = 2 * 2**30
    #: Processes and threads at the same time (both cgroup pids and RLIMIT_NPROC count threads).
    processes: int = 64
    #: Bytes of the private tmpfs (/home/student, where /tmp points); /dev/shm is another tmpfs of this size.
    disk: int = 256 * 2**20
    #: Bytes of stdout+stderr kept (the rest is read and dropped).
    output: int = 1_000_000

    def __post_init__(self) -> None:
        for name in ("memory", "processes", "disk", "output"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0 or (value == 0 and name != "memory"):
                raise ValueError(f"Limits.{name} must be a positive int (memory may be 0: no limit), not {value!r}")


def sandbox_env(home: str = HOME) -> dict[str, str]:
    """A minimal environment: nothing of the grader's (no paths to the repository, no tokens)."""
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": home,
        "TMPDIR": f"{home}/.tmp",
        "USER": "student",
        "LOGNAME": "student",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "MPLBACKEND": "Agg",
        "MPLCONFIGDIR": f"{home}/.config/matplotlib",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
        "TQDM_DISABLE": "1",
    }
    env.update({k: os.environ[k] for k in PASS_THROUGH if k in os.environ})
    return env


def prepare_library(folder: Path, source: Path = LIBRARY, lab: str | None = None) -> Path:
    """Copy the course library without `grading` and caches into `folder`/utils, readable by anyone; returns it.

    With a `lab` of utils.checks.LAB_LIBRARY, only the modules that lab may use are copied, and the functions in them
    that answer its questions raise instead: the library cannot answer the lab. Call once per grading run and pass
    the result to every Sandbox (bound read-only).
    """
    from utils.checks import LAB_LIBRARY

    target = Path(folder) / source.name
    rules = LAB_LIBRARY.get(lab) if lab is not None else None
    if rules is None:
        shutil.copytree(source, target, ignore=shutil.ignore_patterns("grading", "__pycache__", "*.pyc"))
    else:
        target.mkdir(parents=True)
        shutil.copy2(source / "__init__.py", target / "__init__.py")
        for module, answers in rules.items():
            text = (source / f"{module}.py").read_text(encoding="utf-8")
            (target / f"{module}.py").write_text(_disable(text, set(answers), f"utils.{module}", lab), encoding="utf-8")
    for path in [target, *target.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return target


def _disable(source: str, names: set[str], module: str, lab: str) -> str:
    """A module's source whose top-level functions and classes in `names` raise NotImplementedError when used (a
    class also when any attribute of it is looked up, so `Vocab.build(...)` says why, not AttributeError)."""
    import ast

    if not names:
        return source
    tree = ast.parse(source)
    lines = source.splitlines(keepends=True)
    for node in sorted((n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef)) and n.name in names),
                       key=lambda n: n.lineno, reverse=True):
        start = min([d.lineno for d in node.decorator_list] + [node.lineno]) - 1
        message = (f"{module}.{node.name} does what {lab} asks you to write, so it is not available while {lab} "
                   "is graded")
        stub = (f"def {node.name}(*args, **kwargs):\n    raise NotImplementedError({message!r})\n"
                if isinstance(node, ast.FunctionDef) else
                f"class _Withheld{node.name}(type):\n    def __getattr__(cls, attribute):\n"
                f"        raise NotImplementedError({message!r})\n\n\n"
                f"class {node.name}(metaclass=_Withheld{node.name}):\n    def __init__(self, *args, **kwargs):\n"
                f"        raise NotImplementedError({message!r})\n")
        lines[start:node.end_lineno] = [stub]
    return "".join(lines)


# --- what this machine offers ---------------------------------------------------------------------------------


def _bwrap() -> str | None:
    """Path of the bwrap executable, if installed."""
    return shutil.which("bwrap") or next((p for p in ("/usr/bin/bwrap", "/bin/bwrap") if os.access(p, os.X_OK)), None)


def _switch_uid() -> bool:
    """Whether sandboxes run as a fresh unprivileged uid (only root may switch uid)."""
    return os.geteuid() == 0


def _own_cgroups() -> tuple[dict[str, str], list[str]]:
    """This process's cgroup path per v1 controller ('' for the v2 hierarchy) and the mount table's lines."""
    own: dict[str, str] = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        number, names, path = line.split(":", 2)
        for name in names.split(",") if names else [""]:
            own[name] = path
    return own, Path("/proc/self/mountinfo").read_text().splitlines()


def _v1_folders(own: dict[str, str], mountinfo: list[str]) -> dict[str, Path]:
    """For each cgroup v1 controller of CONTROLLERS: this process's own cgroup folder, if sandboxes' cgroups can be
    created in it (probed by creating and removing one)."""
    folders: dict[str, Path] = {}
    for line in mountinfo:
        fields, _, tail = line.partition(" - ")
        fields, tail = fields.split(), tail.split()
        if len(tail) < 3 or tail[0] != "cgroup":
            continue
        root, mountpoint = fields[3], fields[4]
        for name in set(tail[2].split(",")) & set(CONTROLLERS):
            path = own.get(name)
            if path is None or not (path + "/").startswith(root.rstrip("/") + "/") or name in folders:
                continue
            folder = Path(mountpoint) / path[len(root.rstrip("/")):].lstrip("/")
            probe = folder / f"grading-probe-{os.getpid()}-{secrets.token_hex(4)}"
            try:
                probe.mkdir()
                probe.rmdir()
            except OSError:
                continue
            folders[name] = folder
    return folders


def _v2_folder(own: dict[str, str], mountinfo: list[str]) -> Path | None:
    """This process's cgroup v2 folder (None when no cgroup2 file system holds it)."""
    path = own.get("")
    for line in mountinfo:
        fields, _, tail = line.partition(" - ")
        fields, tail = fields.split(), tail.split()
        if path is not None and tail and tail[0] == "cgroup2":
            root, mountpoint = fields[3], fields[4]
            if (path + "/").startswith(root.rstrip("/") + "/"):
                return Path(mountpoint) / path[len(root.rstrip("/")):].lstrip("/")
    return None


#: The leaf cgroup v2 the grader's own processes move into, so that its cgroup may hand controllers to sandboxes
#: (cgroup v2 lets only a cgroup without processes of its own enable controllers for its children).
V2_LEAF = "grading-grader"


def delegate_v2(folder: Path) -> Path | None:
    """`folder` (this process's cgroup v2) made the parent of sandboxes' cgroups with the memory and pids controllers
    enabled for them, or None where that is not allowed (a subtree not delegated to this user, controllers missing).
    If the folder holds processes, they move into its leaf V2_LEAF first (never at the machine's root cgroup, which
    the rule exempts); the limits above them are unchanged."""
    try:
        available = (folder / "cgroup.controllers").read_text().split()
        enabled = (folder / "cgroup.subtree_control").read_text().replace("+", "").split()
        if not set(CONTROLLERS) <= set(available):
            return None
        if not set(CONTROLLERS) <= set(enabled):
            procs = (folder / "cgroup.procs").read_text().split()
            if procs and (folder / "cgroup.type").exists():  # the machine's root cgroup (no cgroup.type) is exempt
                leaf = folder / V2_LEAF
                leaf.mkdir(exist_ok=True)
                for pid in procs:  # one write per process (the kernel takes one pid a write)
                    try:
                        (leaf / "cgroup.procs").write_text(pid)
                    except ProcessLookupError:
                        pass
            (folder / "cgroup.subtree_control").write_text(" ".join(f"+{c}" for c in CONTROLLERS))
            enabled = (folder / "cgroup.subtree_control").read_text().replace("+", "").split()
        probe = folder / f"grading-probe-{os.getpid()}-{secrets.token_hex(4)}"
        probe.mkdir()
        probe.rmdir()
    except OSError:
        return None
    return folder if set(CONTROLLERS) <= set(enabled) else None


#: Seconds systemd may take to put the scope's process into its cgroup.
SCOPE_TIMEOUT = 10.0


def _cgroup_v2_of(pid: int) -> str | None:
    """A process's cgroup v2 path ('/user.slice/...'), None when it is gone or has none."""
    try:
        lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    except OSError:
        return None
    return next((line.split(":", 2)[2] for line in lines if line.startswith("0::")), None)


def systemd_scope(mountinfo: list[str]) -> Path | None:
    """A cgroup v2 folder delegated to this user by systemd, for hosts that delegate that way: a transient scope
    (`systemd-run [--user] --scope -p Delegate=yes`) around a placeholder process that lives as long as this one
    (it waits for the end of a pipe only this process holds), prepared by delegate_v2; None when systemd-run is
    missing or refuses (no user manager, no delegation)."""
    run = shutil.which("systemd-run")
    if run is None:
        return None
    unit = f"grading-{os.getpid()}-{secrets.token_hex(4)}.scope"
    try:
        holder = subprocess.Popen(
            [run, *([] if os.geteuid() == 0 else ["--user"]), "--scope", "--quiet", "--collect", "-p", "Delegate=yes",
             "--unit", unit, "--", sys.executable, "-c", "import sys; sys.stdin.buffer.read()"],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    except OSError:
        return None
    deadline = time.monotonic() + SCOPE_TIMEOUT
    while (path := _cgroup_v2_of(holder.pid)) is None or not path.endswith("/" + unit):
        if holder.poll() is not None or time.monotonic() > deadline:
            holder.kill()
            holder.wait()
            return None
        time.sleep(0.02)
    creator = os.getpid()
    atexit.register(lambda: os.getpid() == creator and (holder.stdin.close(), holder.wait()))
    folder = _v2_folder({"": path}, mountinfo)
    return delegate_v2(folder) if folder is not None else None


@lru_cache(maxsize=1)
def cgroup_folders() -> dict[str, Path]:
    """Where each sandbox's cgroup for each controller of CONTROLLERS is made: cgroup v1 folders where this process
    may create cgroups, else one delegated cgroup v2 folder for both (this process's own cgroup, or a transient
    systemd scope delegated to it); {} when none (rlimits then)."""
    try:
        own, mountinfo = _own_cgroups()
    except (OSError, ValueError):
        return {}
    if folders := _v1_folders(own, mountinfo):
        return folders
    folder = _v2_folder(own, mountinfo)
    parent = delegate_v2(folder) if folder is not None else None
    if parent is None and folder is not None:
        parent = systemd_scope(mountinfo)
    return {c: parent for c in CONTROLLERS} if parent is not None else {}


def cgroup_version(folders: dict[str, Path]) -> int:
    """2 when `folders` lie in a cgroup v2 hierarchy (one folder for all controllers), else 1."""
    return 2 if any((f / "cgroup.controllers").exists() for f in folders.values()) else 1


def limits_mechanism() -> str:
    """How memory and process limits are enforced here, in words."""
    folders = cgroup_folders()
    version = f"cgroup v{cgroup_version(folders)}"
    memory = (f"{version} memory (whole sandbox) + RLIMIT_DATA per process" if "memory" in folders
              else "RLIMIT_DATA (per process)")
    processes = (f"{version} pids (whole sandbox)" if "pids" in folders
                 else "RLIMIT_NPROC in the sandbox's user namespace (whole sandbox)" if PRLIMIT
                 else "nothing (neither a pids cgroup nor prlimit here)")
    return f"memory by {memory}; processes by {processes}"


#: What bubblewrap says when the kernel refuses it namespaces (then the fix is the host's settings, not the path).
NAMESPACE_ERRORS = ("namespace", "uid map", "setting up uid", "Operation not permitted", "Permission denied")
#: What the trial sandbox prints when the grader's Python works inside it.
TRIAL_OUTPUT = "sandbox-trial-ok"


def _trial_failure(version: str, text: str) -> SandboxUnavailable:
    """The error for a trial sandbox that failed with `text`: its cause and the fix."""
    if any(marker in text for marker in NAMESPACE_ERRORS):
        return SandboxUnavailable(
            f"{version} cannot create a sandbox here: {text}. It needs bubblewrap 0.8 or later and unprivileged user "
            "namespaces (sysctl user.max_user_namespaces > 0; on Ubuntu also kernel.apparmor_restrict_unprivileged_"
            "userns=0); otherwise " + INSTALL_HINT + ".")
    return SandboxUnavailable(
        f"{version} started, but the grader's Python ({sys.executable}) does not run in the sandbox: {text}. The "
        "sandbox binds the Python installation and the course library at the paths this process uses: grade with "
        "the course's .venv/bin/python (not a copy that points elsewhere), and if the installation lies in a "
        "folder other users cannot read, make it readable (chmod o+rx) or run the grader as root; otherwise "
        + INSTALL_HINT + ".")


@lru_cache(maxsize=1)
def check_sandbox() -> str:
    """One line saying what the sandbox uses; raises SandboxUnavailable (naming the cause and the fix) when it
    cannot work. The trial is the real thing: the grader's Python in a sandbox with every bind a submission gets."""
    bwrap = _bwrap()
    if bwrap is None:
        raise SandboxUnavailable(f"the grader's sandbox needs bubblewrap (bwrap), which is not installed: {INSTALL_HINT}.")
    version = subprocess.run([bwrap, "--version"], capture_output=True, text=True).stdout.strip() or "bubblewrap"
    try:
        with Sandbox(Limits(), LIBRARY) as trial:
            trial.start([sys.executable, "-I", "-c", f"import encodings, json; print({TRIAL_OUTPUT!r})"])
            try:
                trial.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                pass
            trial.kill()
            text, ended = trial.output().strip(), trial.exit_description()
    except OSError as error:
        raise SandboxUnavailable(f"{version} could not start a sandbox ({error}): {INSTALL_HINT}.") from error
    if text != TRIAL_OUTPUT or ended != "exit code 0":
        raise _trial_failure(version, text or ended)
    who = "a fresh unprivileged uid per sandbox" if _switch_uid() else f"uid {os.getuid()}"
    seccomp = f"{len(BLOCKED_SYSCALLS)} system calls refused by seccomp" if seccomp_filter() else "no seccomp filter"
    return f"{version} as {who}; {limits_mechanism()}; disk by tmpfs size; {seccomp}"


def _fresh_uid() -> int | None:
    """A uid (and gid) for one sandbox when the grader is root, else None (bwrap runs as the grader's user)."""
    return UID_BASE + secrets.randbelow(2**20) if _switch_uid() else None


def _user_kwargs(uid: int | None) -> dict:
    """Popen arguments that run the child as `uid` with no supplementary groups (done in C, before exec)."""
    return {} if uid is None else {"user": uid, "group": uid, "extra_groups": []}


def _namespace_args(nested: bool = False) -> list[str]:
    """bwrap options: every namespace, no capabilities, a new session, no nested user namespaces (unless `nested`:
    a zygote's sandbox, whose forks make their own namespaces and lock themselves in; see utils.grading.zygote)."""
    return ["--unshare-all", "--unshare-user", *([] if nested else ["--disable-userns"]), "--die-with-parent",
            "--new-session", "--cap-drop", "ALL", "--uid", str(INSIDE_UID), "--gid", str(INSIDE_UID),
            "--hostname", "sandbox"]


def _system_args() -> list[str]:
    """bwrap options for the read-only system folders (symlinks such as /lib -> usr/lib are re-created)."""
    args: list[str] = []
    for path in SYSTEM:
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    return args


# --- a runtime folder the unprivileged sandbox uid can reach -----------------------------------------------------


def _reachable(path: Path) -> bool:
    """Whether a user with no relation to the owners can reach `path` (every folder on the way searchable by
    others, the folder itself readable)."""
    path = path.resolve()
    for folder in [*reversed(path.parents), path]:
        try:
            mode = folder.stat().st_mode
        except OSError:
            return False
        if not mode & stat.S_IXOTH:
            return False
    return bool(path.stat().st_mode & stat.S_IROTH)


def _publish(target: Path, build) -> None:
    """Create `target` atomically with `build(temporary_path)`; if another process made it first, keep theirs."""
    temporary = target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}")
    try:
        build(temporary)
        os.rename(temporary, target)
    except OSError:
        if not target.exists():
            raise
    finally:
        if temporary.is_dir():
            shutil.rmtree(temporary, ignore_errors=True)
        elif temporary.exists():
            temporary.unlink()


@lru_cache(maxsize=1)
def _runtime() -> Path:
    """The grader user's runtime folder, shared by all its processes (fork servers included) and kept between runs:
    /tmp/grading-sandbox-<uid> (0711: others may pass through, not list), with hard-link mirrors of what the sandbox
    uid cannot reach and the sandbox's own passwd and group. A private folder if that one is not safely ours."""
    folder = Path(tempfile.gettempdir()) / f"grading-sandbox-{os.geteuid()}"
    try:
        folder.mkdir(mode=0o711)
    except FileExistsError:
        pass
    info = os.lstat(folder)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o022:
        folder, creator = Path(tempfile.mkdtemp(prefix="grading-sandbox-")), os.getpid()
        atexit.register(lambda: os.getpid() == creator and shutil.rmtree(folder, True))  # not in forked children
    folder.chmod(0o711)
    files = {"passwd": f"student:x:{INSIDE_UID}:{INSIDE_UID}:student:{HOME}:/bin/sh\n"
                       "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
             "group": f"student:x:{INSIDE_UID}:\nnogroup:x:65534:\n"}
    for name, text in files.items():
        if not (folder / name).exists():
            _publish(folder / name, lambda path, text=text: (path.write_text(text), path.chmod(0o644)))
    return folder


def _link_or_copy(source: str, target: str) -> None:
    """Hard-link a file (instant, no space); copy it when linking is impossible (another file system)."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _python_ignore(prefix: Path):
    """What the mirror of the base Python installation leaves out: its own site-packages, the test suite, and
    everything in bin/ but the interpreter."""
    stdlib = prefix / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}"

    def ignore(folder: str, names: list[str]) -> list[str]:
        if Path(folder) == stdlib:
            return [n for n in names if n in ("site-packages", "test")]
        if Path(folder) == prefix / "bin":
            return [n for n in names if not n.startswith("python")]
        return []
    return ignore


def _fingerprint(path: Path) -> str:
    """A key that changes when the tree at `path` changes: the Python installation and the virtual environment by
    a few landmarks (interpreter, folders whose time changes when packages come and go: fast); any other tree (the
    library copy of each run) by its content, so identical copies share one mirror."""
    digest = hashlib.sha256()
    if path in (Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve()):
        stdlib = path / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}"
        for file in [Path(sys.executable).resolve(), path, stdlib, stdlib / "os.py", stdlib / "site-packages",
                     path / "bin", path / "lib", path / "pyvenv.cfg"]:
            try:
                info = os.lstat(file)
            except FileNotFoundError:
                continue
            digest.update(f"{file}\0{info.st_size}\0{info.st_mtime_ns}\0{info.st_ino}\n".encode())
    else:
        for file in sorted(path.rglob("*")):
            digest.update(f"{file.relative_to(path)}\0{stat.S_IMODE(file.lstat().st_mode)}\0".encode())
            if file.is_file() and not file.is_symlink():
                digest.update(file.read_bytes())
    return digest.hexdigest()[:20]


@lru_cache(maxsize=64)
def _mirror_of(path: Path, key: str) -> Path:
    """The runtime's hard-link mirror of `path` as fingerprinted by `key`, made on first use."""
    folder = _runtime() / "mirror"
    folder.mkdir(mode=0o711, exist_ok=True)
    target = folder / f"{path.name}-{key}"
    if not target.is_dir():
        ignore = _python_ignore(path) if path == Path(sys.base_prefix).resolve() else None

        def build(temporary: Path) -> None:
            shutil.copytree(path, temporary, symlinks=True, copy_function=_link_or_copy, ignore=ignore)
            for item in [temporary, *(p for p in temporary.rglob("*") if p.is_dir() and not p.is_symlink())]:
                item.chmod(item.stat().st_mode | 0o555)
        _publish(target, build)
    os.utime(target)  # in use: not pruned
    for old in folder.glob(f"{path.name}-*"):  # mirrors of older versions, unused for a week
        if old != target and time.time() - old.stat().st_mtime > MIRROR_LIFETIME:
            shutil.rmtree(old, ignore_errors=True)
    return target


def _mirror(path: Path) -> Path:
    """`path` itself if the sandbox uid can reach it, else a hard-link mirror of it in the runtime folder."""
    path = path.resolve()
    if not _switch_uid() or _reachable(path):
        return path
    return _mirror_of(path, _fingerprint(path))


def _python_binds() -> list[tuple[Path, Path]]:
    """(source, target) pairs binding the Python installation (venv and base interpreter) read-only at every path
    the grader reaches it by: as named (a .venv through a symbolic link, which sys.executable uses) and resolved."""
    binds: dict[Path, Path] = {}
    for prefix in (Path(sys.base_prefix), Path(sys.prefix)):
        real = prefix.resolve()
        for target in (Path(os.path.abspath(prefix)), real):
            if any(target == Path(s) or Path(s) in target.parents for s in SYSTEM):
                continue  # a system Python: /usr is bound already
            binds.setdefault(target, real)
    return [(_mirror(real), target) for target, real in sorted(binds.items())]


def _under_tmp(path: Path) -> bool:
    """Whether `path` lies in /tmp, where the sandbox's own /tmp would otherwise be a symlink to its home."""
    return path == Path("/tmp") or Path("/tmp") in path.parents


def _python_args(binds: list[tuple[Path, Path]]) -> list[str]:
    """bwrap options for `_python_binds()`."""
    return [arg for source, target in binds for arg in ("--ro-bind", str(source), str(target))]


def _tmp_and_python_args(disk: str) -> list[str]:
    """bwrap options for /tmp and the Python installation. /tmp is a symlink to the home's .tmp (one tmpfs, one disk
    limit), unless Python is installed under /tmp (a clone there): then /tmp is a tmpfs of its own (same size, also
    counted by the memory cgroup) holding the read-only binds."""
    binds = _python_binds()
    if any(_under_tmp(target) for _, target in binds):
        return ["--size", disk, "--tmpfs", "/tmp", *_python_args(binds)]
    return [*_python_args(binds), "--symlink", f"{HOME}/.tmp", "/tmp"]


def _etc_args() -> list[str]:
    """bwrap options for the few /etc files programs need, and the sandbox's own passwd and group."""
    args: list[str] = []
    for name in ETC:
        args += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
    for name in ("passwd", "group"):
        args += ["--ro-bind", str(_runtime() / name), f"/etc/{name}"]
    return args


# --- seccomp -------------------------------------------------------------------------------------------------------

#: System calls the sandbox refuses (EPERM): the kernel interfaces most kernel exploits start from, and those that
#: could reach outside the sandbox were a namespace or capability check ever wrong. Nothing a lab needs. Names, not
#: numbers: libseccomp numbers them for each architecture (a name an architecture lacks is skipped there).
BLOCKED_SYSCALLS = (
    "ptrace", "process_vm_readv", "process_vm_writev", "keyctl", "add_key", "request_key", "bpf", "perf_event_open",
    "userfaultfd", "io_uring_setup", "io_uring_enter", "io_uring_register", "kexec_load", "kexec_file_load",
    "init_module", "finit_module", "delete_module", "mount", "umount2", "pivot_root", "setns", "unshare",
    "open_by_handle_at", "name_to_handle_at", "acct", "swapon", "swapoff", "reboot", "syslog", "personality",
    "fanotify_init", "move_mount", "open_tree", "fsopen", "fsmount", "fspick", "mount_setattr",
)
#: clone()'s flag for a new user namespace (the one namespace flag that needs no capability).
CLONE_NEWUSER = 0x10000000
#: The architectures a filter is built for (os.uname().machine), as libseccomp's names.
SECCOMP_ARCHES = {"x86_64": "X86_64", "aarch64": "AARCH64"}


def _libseccomp():
    """The pyseccomp binding of libseccomp (bubblewrap's own dependency), or None when either is missing."""
    try:
        import pyseccomp
    except (ImportError, OSError):
        return None
    return pyseccomp


@lru_cache(maxsize=4)
def seccomp_filter(machine: str | None = None, forked: bool = False) -> bytes | None:
    """The BPF program (for bwrap --seccomp) refusing BLOCKED_SYSCALLS with EPERM on `machine` (default: this one),
    built by libseccomp; it kills a process that calls in through another ABI (i386, x32). None when libseccomp is
    missing or the architecture is not one of SECCOMP_ARCHES. `forked`: for a zygote's fork, which has no bwrap
    --disable-userns: clone with CLONE_NEWUSER is refused too, and clone3 (whose flags a filter cannot read) says
    ENOSYS, so that the C library falls back to clone."""
    machine = machine or os.uname().machine
    seccomp = _libseccomp()
    if seccomp is None or machine not in SECCOMP_ARCHES:
        return None
    arch = getattr(seccomp.Arch, SECCOMP_ARCHES[machine])
    rules = seccomp.SyscallFilter(seccomp.ALLOW)
    rules.set_attr(seccomp.Attr.ACT_BADARCH, seccomp.KILL_PROCESS)
    if arch != seccomp.system_arch():
        rules.add_arch(arch)
        rules.remove_arch(seccomp.Arch.NATIVE)
    for name in BLOCKED_SYSCALLS:
        if seccomp.resolve_syscall(arch, name) >= 0:
            rules.add_rule(seccomp.ERRNO(errno.EPERM), name)
    if forked:
        rules.add_rule(seccomp.ERRNO(errno.EPERM), "clone", seccomp.Arg(0, seccomp.MASKED_EQ, CLONE_NEWUSER,
                                                                         CLONE_NEWUSER))
        rules.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")
    with tempfile.TemporaryFile() as file:
        rules.export_bpf(file)
        file.seek(0)
        return file.read()


# --- cgroups ------------------------------------------------------------------------------------------------------


def _remove_stale_cgroups(parent: Path) -> None:
    """Remove the empty cgroups of sandboxes whose grader process is gone (killed before it could clean up)."""
    for folder in parent.glob("grading-sandbox-*-*"):
        if not Path(f"/proc/{folder.name.split('-')[2]}").exists():
            try:
                folder.rmdir()
            except OSError:
                pass


class _Cgroups:
    """One sandbox's cgroups (one per available controller on cgroup v1, one for both on v2), with its limits set."""

    def __init__(self, limits: Limits, parents: dict[str, Path] | None = None) -> None:
        parents = cgroup_folders() if parents is None else parents
        self.version = cgroup_version(parents)
        name = f"grading-sandbox-{os.getpid()}-{secrets.token_hex(6)}"
        self.folders = {c: folder / name for c, folder in parents.items()}
        for folder in set(self.folders.values()):
            _remove_stale_cgroups(folder.parent)
            folder.mkdir()
        memory, pids = self.folders.get("memory"), self.folders.get("pids")
        if memory is not None and limits.memory:
            if self.version == 2:
                (memory / "memory.max").write_text(str(limits.memory))
                if (memory / "memory.swap.max").exists():
                    (memory / "memory.swap.max").write_text("0")  # no escape into swap
            else:
                (memory / "memory.limit_in_bytes").write_text(str(limits.memory))
                if (memory / "memory.memsw.limit_in_bytes").exists():  # no escape into swap
                    (memory / "memory.memsw.limit_in_bytes").write_text(str(limits.memory))
        if pids is not None:  # bwrap's own two processes (monitor and PID-namespace init) are not the student's
            (pids / "pids.max").write_text(str(limits.processes + 2))

    def add(self, pid: int) -> None:
        """Move a process into every cgroup (its future children are born there)."""
        for folder in set(self.folders.values()):
            (folder / "cgroup.procs").write_text(str(pid))

    def pids(self) -> set[int]:
        """Every process in the sandbox's cgroups."""
        found: set[int] = set()
        for folder in set(self.folders.values()):
            try:
                found.update(int(p) for p in (folder / "cgroup.procs").read_text().split())
            except OSError:
                pass
        return found

    def kill_all(self, timeout: float = 10.0) -> bool:
        """SIGKILL every process in the cgroups until none is left; False if some survived `timeout`."""
        deadline = time.monotonic() + timeout
        while pids := self.pids():
            if time.monotonic() > deadline:
                return False
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.005)
        return True

    def oom_kills(self) -> int:
        """How many processes the kernel killed for exceeding the memory limit."""
        name = "memory.events" if self.version == 2 else "memory.oom_control"
        try:
            text = (self.folders["memory"] / name).read_text()
        except (KeyError, OSError):
            return 0
        return next((int(line.split()[1]) for line in text.splitlines() if line.startswith("oom_kill ")), 0)

    def release(self) -> int:
        """At a sandbox's end: kill what is left, remove the cgroups; how many processes the memory limit killed."""
        self.kill_all()
        oom_kills = self.oom_kills()
        self.remove()
        return oom_kills

    def remove(self) -> None:
        """Remove the (empty) cgroups; retried briefly while the last processes are being reaped."""
        for folder in set(self.folders.values()):
            for _ in range(200):
                try:
                    folder.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError as error:
                    if error.errno != errno.EBUSY:
                        break
                    time.sleep(0.005)


# --- the sandbox ---------------------------------------------------------------------------------------------------


def _lower_rlimit(kind: int, value: int) -> None:
    """Set a resource limit (soft and hard) to `value`, or leave it if it is lower already (raising needs privilege)."""
    _, hard = resource.getrlimit(kind)
    value = value if hard == resource.RLIM_INFINITY else min(value, hard)
    resource.setrlimit(kind, (value, value))


def describe_exit(code: int | None) -> str:
    """'exit code 1' or 'signal 11 (SIGSEGV)' for a process's return code (negative: killed by a signal)."""
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"signal {-code} ({signal.Signals(-code).name})"
        except ValueError:
            return f"signal {-code}"
    return f"exit code {code}"


class _Output:
    """Drains a pipe in a thread, keeping the first `limit` bytes and counting the rest."""

    def __init__(self, fd: int, limit: int) -> None:
        self.fd, self.limit = fd, limit
        self.kept, self.total = bytearray(), 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._drain, name="sandbox-output", daemon=True)
        self.thread.start()

    def _drain(self) -> None:
        """Read until every writer is gone; past the cap, move the data to /dev/null inside the kernel (a flood
        then costs the grader almost nothing)."""
        sink = os.open(os.devnull, os.O_WRONLY)
        try:
            fcntl.fcntl(self.fd, fcntl.F_SETPIPE_SZ, 2**20)
        except OSError:
            pass
        try:
            while not self.stop.is_set():
                if not select.select([self.fd], [], [], 0.2)[0]:
                    continue
                if len(self.kept) < self.limit:
                    chunk = os.read(self.fd, 65536)
                    self.kept += chunk[: self.limit - len(self.kept)]
                    size = len(chunk)
                else:
                    size = os.splice(self.fd, sink, 2**20)
                if not size:
                    break
                self.total += size
        finally:
            os.close(sink)
            os.close(self.fd)

    def close(self, timeout: float = 5.0) -> None:
        """Wait for the end of the output (all writers gone), then stop reading."""
        self.thread.join(timeout)
        self.stop.set()
        self.thread.join()

    def text(self) -> str:
        """What was kept, decoded, with a note of how much was cut."""
        text = self.kept.decode("utf-8", errors="replace")
        if self.total > len(self.kept):
            text += f"\n[output cut by the grader: {self.total - len(self.kept)} of {self.total} bytes dropped]\n"
        return text


class Sandbox:
    """Runs one command in a fresh sandbox; a context manager that always kills it.

    `library` is the folder bound read-only at /home/student/utils (see prepare_library); with `enabled=False`
    the command runs without bubblewrap, in a private temporary folder, with rlimits (and cgroups if writable)
    only: it sees the whole machine as the grader's user.
    """

    def __init__(self, limits: Limits = Limits(), library: Path | None = None, *, enabled: bool = True,
                 nested: bool = False) -> None:
        self.limits, self.library, self.enabled, self.nested = limits, library, enabled, nested
        self.process: subprocess.Popen | None = None
        self._cgroups: _Cgroups | None = None
        self._output: _Output | None = None
        self._init_pidfd: int | None = None
        self._home: str | None = None  # the private folder without bubblewrap
        self._oom_kills = 0

    def __enter__(self) -> "Sandbox":
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()

    def _bwrap_args(self, env: dict[str, str]) -> list[str]:
        """The bubblewrap command line, up to the `--` before the sandboxed argv."""
        disk = str(self.limits.disk)
        args = [_bwrap(), *_namespace_args(self.nested), *_system_args(), *_etc_args(), *_tmp_and_python_args(disk),
                "--ro-bind-try", "/sys/devices/system/cpu", "/sys/devices/system/cpu",  # CPU count for torch/numpy
                "--proc", "/proc", "--dev", "/dev", "--size", disk, "--tmpfs", "/dev/shm",
                "--size", disk, "--tmpfs", HOME, "--dir", f"{HOME}/.tmp", "--dir", f"{HOME}/.config"]
        if self.library is not None:
            args += ["--ro-bind", str(_mirror(Path(self.library))), f"{HOME}/utils"]
        args += ["--remount-ro", "/", "--remount-ro", "/dev", "--chdir", HOME, "--clearenv"]
        for key, value in env.items():
            args += ["--setenv", key, value]
        return args

    def _rlimits(self) -> None:
        """Run in the child before exec (only setrlimit calls): limits that need no cgroup, inherited by all."""
        _lower_rlimit(resource.RLIMIT_CORE, 0)
        _lower_rlimit(resource.RLIMIT_FSIZE, self.limits.disk)
        _lower_rlimit(resource.RLIMIT_NOFILE, OPEN_FILES)
        if self.limits.memory:
            _lower_rlimit(resource.RLIMIT_DATA, self.limits.memory)

    def start(self, argv: list[str], pass_fds: tuple[int, ...] = (), env: dict[str, str] | None = None) -> subprocess.Popen:
        """Start `argv` in the sandbox (cwd and HOME /home/student, stdin /dev/null, `pass_fds` inherited)."""
        if self.process is not None:
            raise RuntimeError("a Sandbox runs one command; make a new one")
        if self.enabled and _bwrap() is None:
            raise SandboxUnavailable(f"bubblewrap (bwrap) is not installed: {INSTALL_HINT}.")
        self._cgroups = _Cgroups(self.limits) if cgroup_folders() else None
        uid = _fresh_uid() if self.enabled else None
        out_r, out_w = os.pipe()
        try:
            if self.enabled:
                self._start_bwrap(argv, pass_fds, {**sandbox_env(), **(env or {})}, uid, out_w)
            else:
                self._start_plain(argv, pass_fds, env, out_w)
        except BaseException:
            os.close(out_r)
            self.kill()
            raise
        finally:
            os.close(out_w)
        self._output = _Output(out_r, self.limits.output)
        return self.process

    def _start_bwrap(self, argv, pass_fds, env, uid, out_w) -> None:
        """bwrap waits (--block-fd) until its two processes are in the cgroups, then runs argv."""
        info_r, info_w = os.pipe()
        block_r, block_w = os.pipe()
        seccomp_r, seccomp_w = os.pipe()
        program = None if self.nested else seccomp_filter()  # a zygote's forks install theirs themselves
        os.write(seccomp_w, program or b"")  # a few hundred bytes: fits in the pipe
        os.close(seccomp_w)
        try:
            if "pids" not in cgroup_folders() and PRLIMIT and not self.nested:
                # RLIMIT_NPROC set inside counts only the sandbox's user namespace (its init and what it runs), so
                # it limits the whole sandbox whatever else the grader's user runs; nobody inside can raise it.
                argv = [PRLIMIT, f"--nproc={self.limits.processes + 1}", "--", *argv]
            command = [*self._bwrap_args(env), "--info-fd", str(info_w), "--block-fd", str(block_r),
                       *(["--seccomp", str(seccomp_r)] if program else []), "--", *argv]
            self.process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=out_w, stderr=out_w,
                pass_fds=(*pass_fds, info_w, block_r, seccomp_r),
                env={"PATH": "/usr/bin:/bin"}, cwd="/", start_new_session=True, preexec_fn=self._rlimits,
                **_user_kwargs(uid))
            os.close(info_w)
            info_w = -1
            init = self._read_info(info_r).get("child-pid")
            if init is not None:
                self._init_pidfd = os.pidfd_open(init)
                if self._parent_of(init) != self.process.pid:  # it exited already and the pid was reused
                    os.close(self._init_pidfd)
                    self._init_pidfd = None
                elif self._cgroups is not None:
                    self._cgroups.add(self.process.pid)
                    self._cgroups.add(init)
            os.write(block_w, b"go")
        finally:
            for fd in (info_r, info_w, block_r, block_w, seccomp_r):
                if fd >= 0:
                    os.close(fd)

    @staticmethod
    def _read_info(fd: int, timeout: float = 30.0) -> dict:
        """bwrap's --info-fd JSON (the PID-namespace init's pid); {} if bwrap failed before writing it."""
        data, deadline = b"", time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not select.select([fd], [], [], 0.1)[0]:
                continue
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            data += chunk
            try:
                return json.loads(data)
            except ValueError:
                pass
        return {}

    @staticmethod
    def _parent_of(pid: int) -> int | None:
        """A process's parent pid, or None if it is gone."""
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            return None
        return next((int(line.split()[1]) for line in status.splitlines() if line.startswith("PPid:")), None)

    def _start_plain(self, argv, pass_fds, env, out_w) -> None:
        """Without bubblewrap: a private temporary folder with the library, rlimits, cgroups if writable."""
        self._home = tempfile.mkdtemp(prefix="grading-nosandbox-")
        if self.library is not None:
            os.symlink(Path(self.library).resolve(), Path(self._home) / "utils")
        cgroups, libc = self._cgroups, ctypes.CDLL(None, use_errno=True)

        def prepare() -> None:
            libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: die with the process that started it
            if cgroups is not None:
                for folder in cgroups.folders.values():
                    with open(folder / "cgroup.procs", "w") as handle:
                        handle.write(str(os.getpid()))
            self._rlimits()
        # Paths meant for the sandbox's /home/student point to the private folder instead.
        full_env = {key: value.replace(HOME, self._home, 1) if value.startswith(HOME) else value
                    for key, value in {**sandbox_env(), **(env or {})}.items()}
        self.process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out_w, stderr=out_w, pass_fds=pass_fds,
                                        env=full_env, cwd=self._home, start_new_session=True, preexec_fn=prepare)

    def alive(self) -> bool:
        """Whether the sandboxed command still runs (with bubblewrap, the rest of the sandbox dies with it)."""
        return self.process is not None and self.process.poll() is None

    def exit_description(self) -> str:
        """How the sandbox ended: 'exit code 1', 'signal 9 (SIGKILL)', 'killed: memory limit', 'still running'."""
        if self.process is None:
            return "not started"
        code = self.process.poll()
        if code is None:
            return "still running"
        if self.enabled and 128 < code < 128 + 65:  # bwrap reports a command killed by signal N as 128 + N
            code = 128 - code
        if code < 0 and (self._oom_kills or (self._cgroups is not None and self._cgroups.oom_kills())):
            return "killed: memory limit"
        return describe_exit(code)

    def output(self) -> str:
        """stdout and stderr so far (capped at Limits.output bytes, with a note of what was cut)."""
        return self._output.text() if self._output else ""

    def kill(self) -> None:
        """Kill every process the sandbox started (daemons included) and wait until they are gone."""
        if self.process is not None and self.process.poll() is None:
            if self._init_pidfd is not None:  # the kernel then kills the whole PID namespace
                try:
                    signal.pidfd_send_signal(self._init_pidfd, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            if not self.enabled:
                try:
                    os.killpg(self.process.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            if self._cgroups is not None:
                self._cgroups.kill_all()
            try:
                # bwrap exits once its namespace init is gone, which the kernel allows only after every process
                # of the namespace has been reaped.
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._cgroups is not None:
            self._oom_kills = self._cgroups.release()
            self._cgroups = None
        if self._init_pidfd is not None:
            os.close(self._init_pidfd)
            self._init_pidfd = None
        if self._output is not None:
            self._output.close()
        if self._home is not None:
            shutil.rmtree(self._home, ignore_errors=True)
            self._home = None
