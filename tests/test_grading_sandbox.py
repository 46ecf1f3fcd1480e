"""The grader's sandbox, attacked directly: each test runs a small Python program inside a Sandbox, as a
determined student would write it, and checks that the attack fails and the machine is left clean."""

from __future__ import annotations

import ast
import os
import secrets
import socket
import sys
import textwrap
import time
from pathlib import Path

import pytest

from utils.grading import sandbox as sandbox_module
from utils.grading.sandbox import Limits, Sandbox, SandboxUnavailable, check_sandbox, prepare_library

ROOT = Path(__file__).resolve().parents[1]

try:
    DESCRIPTION = check_sandbox()
except SandboxUnavailable as error:  # pragma: no cover - the Makefile installs bubblewrap
    pytest.skip(f"no sandbox on this machine: {error}", allow_module_level=True)


@pytest.fixture(scope="module")
def library(tmp_path_factory) -> Path:
    return prepare_library(tmp_path_factory.mktemp("library"))


def run(code: str, library: Path | None = None, limits: Limits | None = None, timeout: float = 60,
        **start) -> tuple[str, str]:
    """Run `code` in a fresh sandbox (default limits unless given) until it ends or `timeout`; (exit, output)."""
    with Sandbox(limits or Limits(), library) as box:
        process = box.start([sys.executable, "-c", textwrap.dedent(code)], **start)
        process.wait(timeout)
        box.kill()
        return box.exit_description(), box.output()


def processes_with(marker: str) -> list[int]:
    """Host pids whose command line contains `marker` (this test process excluded)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if marker.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


def test_check_sandbox_describes_the_limits_and_names_the_package_when_bwrap_is_missing(monkeypatch):
    assert DESCRIPTION.startswith("bubblewrap ") and "memory by" in DESCRIPTION and "processes by" in DESCRIPTION
    check_sandbox.cache_clear()
    monkeypatch.setattr(sandbox_module, "_bwrap", lambda: None)
    try:
        with pytest.raises(SandboxUnavailable, match="apt-get install -y bubblewrap"):
            check_sandbox()
    finally:
        monkeypatch.undo()
        check_sandbox.cache_clear()
        check_sandbox()


def test_the_sandbox_runs_the_course_library_and_torch_as_an_unprivileged_user(library):
    code = """
        import ctypes, os, torch, utils.text
        print("uid", os.getuid(), "cwd", os.getcwd(), "home", os.environ["HOME"], "tmp", os.environ["TMPDIR"])
        print("library", utils.text.__file__, torch.ones(3).sum().item())
        print("caps", [line.split()[1] for line in open("/proc/self/status") if line.startswith("CapEff")])
        print("new user namespace", ctypes.CDLL(None, use_errno=True).unshare(0x10000000))  # CLONE_NEWUSER
        try:
            open("/home/student/utils/text.py", "a")
            print("ALLOWED: writing the library")
        except OSError as error:
            print("read-only library", type(error).__name__)
    """
    description, output = run(code, library)
    assert description == "exit code 0", output
    assert "uid 1000 cwd /home/student home /home/student tmp /home/student/.tmp" in output
    assert "library /home/student/utils/text.py 3.0" in output
    assert "caps ['0000000000000000']" in output, output
    assert "new user namespace -1" in output and "read-only library" in output
    assert str(ROOT) not in output  # the environment says nothing of the repository


#: The kernel's own numbers (arch/x86/entry/syscalls/syscall_64.tbl, include/uapi/asm-generic/unistd.h) of a few
#: refused system calls and of getpid, typed in here so that a filter built with another architecture's numbers fails.
KERNEL_NUMBERS = {
    "x86_64": {"bpf": 321, "io_uring_setup": 425, "ptrace": 101, "keyctl": 250, "userfaultfd": 323,
               "perf_event_open": 298, "unshare": 272, "mount": 165, "getpid": 39},
    "aarch64": {"bpf": 280, "io_uring_setup": 425, "ptrace": 117, "keyctl": 219, "userfaultfd": 282,
                "perf_event_open": 241, "unshare": 97, "mount": 40, "getpid": 172},
}
#: What a seccomp filter returns: allow, refuse with errno EPERM, kill the process.
SECCOMP_ALLOW, SECCOMP_EPERM, SECCOMP_KILL = 0x7FFF0000, 0x00050000 | 1, 0x80000000
AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7, "i386": 0x40000003}


def run_seccomp(program: bytes, arch: int, number: int) -> int:
    """Run a classic BPF seccomp program on one system call (struct seccomp_data: nr, arch, ...); its return value.
    Only the instructions libseccomp emits for these filters (load word, jeq/jge/jgt/jset with a constant, ret)."""
    import struct as _struct
    data = _struct.pack("=iIQ6Q", number, arch, 0, *([0] * 6))
    ops = [_struct.unpack("=HBBI", program[i:i + 8]) for i in range(0, len(program), 8)]
    pc, acc = 0, 0
    while True:
        code, jt, jf, k = ops[pc]
        if code == 0x20:  # BPF_LD | BPF_W | BPF_ABS
            acc = _struct.unpack_from("=I", data, k)[0]
        elif code == 0x06:  # BPF_RET | BPF_K
            return k
        elif code == 0x05:  # BPF_JMP | BPF_JA
            pc += k
        elif code in (0x15, 0x25, 0x35, 0x45):  # BPF_JMP | JEQ, JGT, JGE, JSET with K
            taken = {0x15: acc == k, 0x25: acc > k, 0x35: acc >= k, 0x45: bool(acc & k)}[code]
            pc += jt if taken else jf
        else:
            raise AssertionError(f"instruction {code:#x} not expected in the filter")
        pc += 1


@pytest.mark.parametrize("machine", sorted(KERNEL_NUMBERS))
def test_the_seccomp_filter_refuses_the_same_calls_on_x86_64_and_aarch64(machine):
    program = sandbox_module.seccomp_filter(machine)
    if program is None:
        pytest.skip("libseccomp (pyseccomp and libseccomp.so.2) is not available: the grader runs without a filter")
    numbers = KERNEL_NUMBERS[machine]
    arch = AUDIT_ARCH[machine]
    for name, number in numbers.items():
        expected = SECCOMP_ALLOW if name == "getpid" else SECCOMP_EPERM
        assert run_seccomp(program, arch, number) == expected, (machine, name)
    for allowed in (0, 1, 56, 63, 64, 220, 435):  # read/write/openat/clone/... on one arch or the other
        if allowed not in numbers.values():
            result = run_seccomp(program, arch, allowed)
            assert result in (SECCOMP_ALLOW, SECCOMP_EPERM)
    other = AUDIT_ARCH["aarch64" if machine == "x86_64" else "x86_64"]
    assert run_seccomp(program, other, numbers["getpid"]) == SECCOMP_KILL  # another ABI: killed, not allowed
    assert run_seccomp(program, AUDIT_ARCH["i386"], 20) == SECCOMP_KILL
    if machine == "x86_64":  # the x32 ABI: the same arch value, numbers with bit 30 set
        assert run_seccomp(program, arch, 39 | 0x40000000) == SECCOMP_KILL
    refused = [n for n in range(600) if run_seccomp(program, arch, n) == SECCOMP_EPERM]
    assert len(refused) == sum(1 for name in sandbox_module.BLOCKED_SYSCALLS  # every name this arch has, no other
                               if sandbox_module._libseccomp().resolve_syscall(
                                   getattr(sandbox_module._libseccomp().Arch, machine.upper()), name) >= 0)


@pytest.mark.skipif(os.uname().machine not in KERNEL_NUMBERS or sandbox_module.seccomp_filter() is None,
                    reason="no seccomp filter on this machine (libseccomp missing or another architecture)")
def test_kernel_interfaces_that_exploits_start_from_are_refused(library):
    numbers = KERNEL_NUMBERS[os.uname().machine]
    code = f"""
        import ctypes, errno, os
        libc = ctypes.CDLL(None, use_errno=True)
        for name, number in {sorted(numbers.items())!r}:
            ctypes.set_errno(0)
            print(name, libc.syscall(number, 0, 0, 0, 0, 0), errno.errorcode.get(ctypes.get_errno()), flush=True)
        if os.uname().machine == "x86_64":
            libc.syscall(39 | 0x40000000)  # getpid through the x32 ABI: the filter kills the process
            print("x32 allowed", flush=True)
    """
    ended, output = run(code, library)
    assert output.count(" -1 EPERM") == len(numbers) - 1 and "getpid -1" not in output, output
    assert "getpid " in output
    if os.uname().machine == "x86_64":
        assert "x32 allowed" not in output and ended == "signal 31 (SIGSYS)", (ended, output)


def test_files_outside_the_working_folder_cannot_be_read_by_path_or_through_proc(library):
    secret = ROOT / "solutions" / "lab1" / "lab1.ipynb"
    code = f"""
        import os
        from pathlib import Path
        found = []
        for path in [{str(secret)!r}, {str(ROOT / "utils" / "grading" / "grader.py")!r}, "/root/.bashrc", "/etc/shadow",
                     {__file__!r}, "/proc/1/root/{ROOT}/README.md", "/proc/1/cwd/solutions"]:
            try:
                Path(path).read_bytes()
                found.append(path)
            except OSError:
                pass
        print("found", found)
        try:
            print("repository", sorted(os.listdir({str(ROOT)!r})))
        except OSError:
            print("repository absent")
        print("root", sorted(os.listdir("/root")))
        pids = [p for p in os.listdir("/proc") if p.isdigit()]
        commands = [open(f"/proc/{{p}}/cmdline", "rb").read() for p in pids]
        print("pids", len(pids), any(b"py" + b"test" in c for c in commands))
    """
    _, output = run(code, library)
    assert "found []" in output
    # The repository is absent, or shows only its virtual environment (bound read-only when it lives there).
    assert "repository ['.venv']" in output or "repository absent" in output
    # /root shows at most the folders that lead to the bound Python installation and virtual environment.
    leading = {Path(p).relative_to("/root").parts[0] for p in (sys.base_prefix, sys.prefix) if p.startswith("/root/")}
    if "root [" in output:
        assert set(ast.literal_eval(output.split("root ")[1].splitlines()[0])) <= leading
    assert "pids" in output and "True" not in output.split("pids")[1]
    assert int(output.split("pids ")[1].split()[0]) <= 3  # bwrap's init, python, nothing of the grader


def test_another_sandboxs_files_cannot_be_found(library):
    marker = f"secret-{secrets.token_hex(8)}"
    with Sandbox(Limits(), library) as other:
        other.start([sys.executable, "-c", f"open('{marker}', 'w').write('answers'); open('/tmp/{marker}2', 'w'); "
                                           f"open('/dev/shm/{marker}3', 'w'); print('written', flush=True); "
                                           "import time; time.sleep(60)"])
        deadline = time.monotonic() + 30
        while "written" not in other.output() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "written" in other.output()
        code = f"""
            import os
            hits = []
            for top in ["/home", "/tmp", "/dev", "/etc", "/"]:
                if top == "/":
                    hits += [f for f in os.listdir("/") if {marker!r} in f]
                    continue
                for folder, dirs, files in os.walk(top):
                    hits += [os.path.join(folder, f) for f in files + dirs if {marker!r} in f]
            print("hits", hits)
        """
        _, output = run(code, library)
        assert other.alive()
    assert "hits []" in output


def test_no_network_not_even_the_hosts_loopback(library):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.5)
    port = server.getsockname()[1]
    code = f"""
        import socket
        for host in ["127.0.0.1", "8.8.8.8", "pypi.org"]:
            try:
                socket.create_connection((host, {port} if host == "127.0.0.1" else 443), timeout=3)
                print("CONNECTED", host)
            except OSError as error:
                print("refused", host, type(error).__name__)
    """
    try:
        _, output = run(code, library)
        with pytest.raises(TimeoutError):
            server.accept()
    finally:
        server.close()
    assert "CONNECTED" not in output and output.count("refused") == 3


def test_a_setsid_daemon_is_gone_after_kill_and_never_writes(library):
    marker = f"daemon-{secrets.token_hex(8)}"
    read_end, write_end = os.pipe()
    code = f"""
        import os, sys, time
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                print("daemon started", flush=True)
                time.sleep(1.5)  # after the grader's turn: try to leave a trace
                os.write({write_end}, b"written after the turn")
            os._exit(0)
        time.sleep(30)  # {marker}
    """
    with Sandbox(Limits(), library) as box:
        box.start([sys.executable, "-c", textwrap.dedent(code)], pass_fds=(write_end,))
        os.close(write_end)
        deadline = time.monotonic() + 30
        while "daemon started" not in box.output() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "daemon started" in box.output() and box.alive()
        start = time.monotonic()
        box.kill()
        assert time.monotonic() - start < 5
        assert not box.alive()
        assert processes_with(marker) == []
    time.sleep(1.5)
    assert os.read(read_end, 100) == b""  # end of file: no process holds the pipe any more, nothing was written
    os.close(read_end)


def test_when_the_main_process_ends_every_other_process_of_the_sandbox_ends(library):
    code = """
        import os, time
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                time.sleep(1)
                print("DAEMON SURVIVED", flush=True)
            os._exit(0)
    """
    with Sandbox(Limits(), library) as box:
        box.start([sys.executable, "-c", textwrap.dedent(code)]).wait(30)
        time.sleep(1.5)
        assert "DAEMON SURVIVED" not in box.output() and box.exit_description() == "exit code 0"


@pytest.mark.parametrize("mechanism", ["as found here", "rlimits (no cgroups)"])
def test_a_fork_bomb_stops_at_the_process_limit_and_is_killed_cleanly(library, mechanism, monkeypatch):
    if mechanism != "as found here":
        monkeypatch.setattr(sandbox_module, "cgroup_folders", lambda: {})
    marker = f"bomb-{secrets.token_hex(8)}"
    code = f"""
        import os, time
        children = 0
        for _ in range(300):  # bounded, so a broken limit cannot take the machine down
            try:
                if os.fork() == 0:
                    time.sleep(60)  # {marker}
                    os._exit(0)
                children += 1
            except OSError as error:
                print("stopped", children, type(error).__name__, flush=True)
                break
        time.sleep(60)
    """
    with Sandbox(Limits(processes=16), library) as box:
        box.start([sys.executable, "-c", textwrap.dedent(code)])
        deadline = time.monotonic() + 30
        while "stopped" not in box.output() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert 5 <= len(processes_with(marker)) <= 16 + 2  # with bubblewrap's monitor and namespace init
        box.kill()
        output = box.output()
        assert processes_with(marker) == []
    children = int(output.split("stopped ")[1].split()[0])
    assert children < 16, output


@pytest.mark.parametrize("where", ["/home/student/fill", "/tmp/fill", "/dev/shm/fill"])
def test_a_disk_fill_stops_at_the_size_of_the_tmpfs(library, where):
    code = f"""
        written = 0
        try:
            with open({where!r}, "wb") as handle:
                for _ in range(64):  # at most 64 MiB: bounded even if the cap were missing
                    handle.write(b"x" * 2**20)
                    handle.flush()
                    written += 1
        except OSError as error:
            print("stopped", written, type(error).__name__, error.errno)
        print("done", written)
    """
    _, output = run(code, library, Limits(disk=8 * 2**20))
    assert "stopped" in output, output
    assert int(output.split("done ")[1].split()[0]) <= 8


def test_raw_output_on_fd_1_and_2_is_cut_at_the_cap(library):
    code = """
        import os
        for _ in range(100):
            os.write(1, b"o" * 10_000)
            os.write(2, b"e" * 10_000)
        flood = b"x" * 2**20
        for _ in range(200):  # 200 MB: read past the cap at kernel speed
            os.write(1, flood)
        print("end", flush=True)
    """
    description, output = run(code, library, Limits(output=50_000))
    assert description == "exit code 0"
    assert len(output) < 50_200 and f"of {2_000_004 + 200 * 2**20} bytes dropped" in output, output[-200:]


def test_memory_beyond_the_limit_fails(library):
    description, output = run("""
        try:
            big = bytearray(1024 * 2**20)
            print("ALLOCATED", len(big))
        except MemoryError:
            print("MemoryError")
    """, library, Limits(memory=256 * 2**20))
    assert "MemoryError" in output and "ALLOCATED" not in output


@pytest.mark.skipif("memory" not in sandbox_module.cgroup_folders(), reason="no writable memory cgroup here")
def test_memory_of_the_whole_sandbox_is_capped_by_its_cgroup(library):
    code = """
        import os, time
        for _ in range(6):  # each process stays under the per-process rlimit, together they do not
            if os.fork() == 0:
                block = b"x" * (100 * 2**20)
                time.sleep(3)
                os._exit(0)
        deaths = 0
        for _ in range(6):
            _, status = os.wait()
            deaths += os.WIFSIGNALED(status)
        print("killed children", deaths)
    """
    _, output = run(code, library, Limits(memory=256 * 2**20), timeout=60)
    assert int(output.split("killed children ")[1].split()[0]) >= 1, output


def test_the_sandboxed_processes_are_not_root_outside(library):
    if os.geteuid() != 0:
        pytest.skip("the grader is not root here")
    marker = f"uid-{secrets.token_hex(8)}"
    with Sandbox(Limits(), library) as box:
        box.start([sys.executable, "-c", f"import time; time.sleep(30)  # {marker}"])
        deadline = time.monotonic() + 10
        while not processes_with(marker) and time.monotonic() < deadline:
            time.sleep(0.05)
        uids = [Path(f"/proc/{pid}/status").read_text().split("Uid:")[1].split()[:4] for pid in processes_with(marker)]
    assert uids and all(u == [uids[0][0]] * 4 and int(u[0]) >= sandbox_module.UID_BASE for u in uids), uids


def test_memory_zero_means_no_memory_limit(library):
    description, output = run("print(len(bytearray(300 * 2**20)))", library, Limits(memory=0))
    assert description == "exit code 0" and str(300 * 2**20) in output


def test_without_the_sandbox_the_same_api_runs_the_code(library):
    with Sandbox(Limits(output=1000), library, enabled=False) as box:
        box.start([sys.executable, "-c", "import os, utils; print(os.path.basename(os.getcwd()), flush=True); os._exit(3)"]).wait(60)
        assert box.exit_description() == "exit code 3"
        box.kill()
        assert box.output().startswith("grading-nosandbox-")


def fake_cgroup2(folder: Path, controllers: str = "cpuset cpu io memory pids", procs: str = "") -> Path:
    """A folder laid out like a cgroup v2 directory (the files the grader reads and writes), standing in for a
    host that runs cgroup v2: this machine's kernel runs v1, with an empty v2 hierarchy beside it."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in {"cgroup.controllers": controllers, "cgroup.subtree_control": "", "cgroup.procs": procs,
                       "cgroup.type": "domain", "memory.max": "max", "pids.max": "max"}.items():
        (folder / name).write_text(text)
    return folder


def test_cgroup_v2_delegation_moves_the_grader_into_a_leaf_and_enables_memory_and_pids(tmp_path):
    own = fake_cgroup2(tmp_path / "user.slice" / "grader", procs=f"{os.getpid()}\n")
    assert sandbox_module.delegate_v2(own) == own
    assert (own / sandbox_module.V2_LEAF / "cgroup.procs").read_text() == str(os.getpid())
    assert set((own / "cgroup.subtree_control").read_text().split()) == {"+memory", "+pids"}
    assert sandbox_module.cgroup_version({"memory": own, "pids": own}) == 2
    machine_root = fake_cgroup2(tmp_path / "root", procs="1\n")
    (machine_root / "cgroup.type").unlink()  # the host's root cgroup: processes stay where they are
    assert sandbox_module.delegate_v2(machine_root) == machine_root
    assert not (machine_root / sandbox_module.V2_LEAF).exists()


def test_cgroup_v2_without_the_controllers_or_write_access_falls_back(tmp_path):
    assert sandbox_module.delegate_v2(fake_cgroup2(tmp_path / "a", controllers="cpu io")) is None
    locked = fake_cgroup2(tmp_path / "b")
    (locked / "cgroup.subtree_control").chmod(0o444)
    locked.chmod(0o555)
    try:
        if os.access(locked / "cgroup.subtree_control", os.W_OK):
            pytest.skip("running as root: file modes do not stop this process, so a read-only subtree cannot be faked")
        assert sandbox_module.delegate_v2(locked) is None
    finally:
        locked.chmod(0o755)


def test_cgroup_v2_limits_are_written_for_the_whole_sandbox_and_reported(tmp_path, monkeypatch):
    parent = fake_cgroup2(tmp_path / "grader")
    groups = sandbox_module._Cgroups(Limits(memory=300 * 2**20, processes=10), {"memory": parent, "pids": parent})
    (folder,) = set(groups.folders.values())
    assert folder.parent == parent and groups.version == 2
    assert (folder / "memory.max").read_text() == str(300 * 2**20)
    assert (folder / "pids.max").read_text() == "12"  # the student's 10 and bwrap's own two
    assert not (folder / "memory.limit_in_bytes").exists()  # no v1 file names on a v2 tree
    (folder / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")
    assert groups.oom_kills() == 1
    groups.add(os.getpid())
    assert groups.pids() == {os.getpid()}
    monkeypatch.setattr(sandbox_module, "cgroup_folders", lambda: {"memory": parent, "pids": parent})
    described = sandbox_module.limits_mechanism()
    assert "cgroup v2 memory (whole sandbox)" in described and "cgroup v2 pids (whole sandbox)" in described


def test_cgroup_v2_folder_is_found_from_proc_self_cgroup_and_mountinfo():
    own = {"": "/user.slice/session-1.scope", "memory": "/x"}
    mountinfo = ["30 25 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate",
                 "31 25 0:27 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory"]
    assert sandbox_module._v2_folder(own, mountinfo) == Path("/sys/fs/cgroup/user.slice/session-1.scope")
    assert sandbox_module._v1_folders(own, mountinfo[:1]) == {}


FAKE_SYSTEMD_RUN = """#!/bin/sh
# systemd-run as far as the grader uses it: make the scope's cgroup (in a fake cgroup v2 tree), put this process in
# it, then become the command.
echo "$@" > "$FAKE_ROOT/argv"
while [ "$1" != "--" ]; do [ "$1" = "--unit" ] && unit="$2"; shift; done
shift
scope="$FAKE_ROOT/cgroup/user.slice/$unit"
mkdir -p "$scope"
printf 'cpu io memory pids' > "$scope/cgroup.controllers"
printf '' > "$scope/cgroup.subtree_control"
printf 'domain' > "$scope/cgroup.type"
echo $$ > "$scope/cgroup.procs"
echo "/user.slice/$unit" > "$FAKE_ROOT/cgroup-of-$$"
exec "$@"
"""


def test_a_transient_systemd_scope_is_delegated_when_the_own_cgroup_is_not(tmp_path, monkeypatch):
    """On a host that delegates through systemd, the grader asks for a scope with Delegate=yes around a placeholder
    and gives sandboxes cgroups inside it (faked: systemd-run and the cgroup v2 tree; this machine runs v1)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "systemd-run").write_text(FAKE_SYSTEMD_RUN)
    (bin_dir / "systemd-run").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_ROOT", str(tmp_path))

    def cgroup_of(pid: int) -> str | None:
        path = tmp_path / f"cgroup-of-{pid}"
        return path.read_text().strip() if path.exists() else None
    monkeypatch.setattr(sandbox_module, "_cgroup_v2_of", cgroup_of)
    mountinfo = [f"40 30 0:35 / {tmp_path / 'cgroup'} rw,nosuid,nodev,noexec - cgroup2 cgroup2 rw"]
    folder = sandbox_module.systemd_scope(mountinfo)
    argv = (tmp_path / "argv").read_text().split()
    expected = [*([] if os.geteuid() == 0 else ["--user"]), "--scope", "--quiet", "--collect", "-p", "Delegate=yes"]
    assert argv[:len(expected)] == expected
    assert folder is not None and folder.parent == tmp_path / "cgroup" / "user.slice"
    assert folder.name == argv[argv.index("--unit") + 1]
    holder = int((folder / sandbox_module.V2_LEAF / "cgroup.procs").read_text())  # the placeholder, moved to a leaf
    assert set((folder / "cgroup.subtree_control").read_text().split()) == {"+memory", "+pids"}
    assert Path(f"/proc/{holder}/cmdline").read_bytes().split(b"\0")[-2] == b"import sys; sys.stdin.buffer.read()"
    os.kill(holder, 9)
    (bin_dir / "systemd-run").write_text("#!/bin/sh\nexit 1\n")  # no user manager: no scope, rlimits then
    assert sandbox_module.systemd_scope(mountinfo) is None
