"""The JupyterHub button, end to end: the link the book's theme makes for a notebook opens it in JupyterLab on a hub.

A local JupyterHub (dummy authenticator, one local process per user, configurable-http-proxy from npm) and the
student edition in a local git repository (a file:// address: nbgitpuller's shallow clone needs git's smart
protocol, which a plain file server does not speak) stand in for a university's hub and the course's public
repository. The link is the theme's own (sphinx-book-theme's launch buttons with _config.yml's launch
settings), for lab 1; following it logs the student in, nbgitpuller clones the edition into their home, and
JupyterLab shows lab 1.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from playwright.sync_api import Browser


ROOT = Path(__file__).resolve().parents[1]
PROXY = ROOT / "node_modules" / ".bin" / "configurable-http-proxy"
LAB1 = "labs/lab1/lab1"
pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("jupyterhub") is None or importlib.util.find_spec("nbgitpuller") is None
    or not PROXY.exists(),
    reason="needs jupyterhub and nbgitpuller (requirements.txt) and configurable-http-proxy (npm ci)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def hub_link(hub: str, repository: str, pagename: str) -> str:
    """The JupyterHub button's address on the page of `pagename`, as sphinx-book-theme builds it."""
    sys.path.insert(0, str(ROOT / "book" / "_ext"))
    from course_links import show_set_buttons
    from sphinx_book_theme.header_buttons.launch import add_launch_buttons

    settings = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    launch = {**settings["launch_buttons"], "jupyterhub_url": hub}
    config = SimpleNamespace(html_theme_options={"repository_url": repository, "launch_buttons": launch,
                                                 "repository_branch": "main", "path_to_docs": ""})
    show_set_buttons(None, config)
    provider, user, repo = repository.rsplit("/", 2)
    app = SimpleNamespace(config={"html_theme_options": config.html_theme_options},
                          env=SimpleNamespace(doc2path=lambda name: f"{name}.ipynb",
                                              metadata={pagename: {"kernelspec": {"name": "python3"}}}))
    context = {"pagename": pagename, "sourcename": f"{pagename}.ipynb", "header_buttons": [],
               "github_url": provider, "github_user": user, "github_repo": repo}
    add_launch_buttons(app, pagename, "page.html", context, None)
    buttons = [b for group in context["header_buttons"] for b in group.get("buttons", [])]
    return next(b["url"] for b in buttons if b["text"] == "JupyterHub")


@pytest.fixture(scope="module")
def edition_repository(tmp_path_factory) -> str:
    """The student edition as a bare git repository, by its file:// address."""
    spec = importlib.util.spec_from_file_location("student_edition", ROOT / "scripts" / "student_edition.py")
    edition = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(edition)
    served = tmp_path_factory.mktemp("git")
    folder, _ = edition.build(ROOT, tmp_path_factory.mktemp("edition"))
    work = served / "work"
    shutil.copytree(folder, work)
    git = ["git", "-c", "user.name=course", "-c", "user.email=course@example.org"]
    for step in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "The student edition"]):
        subprocess.run([*git, *step], cwd=work, check=True)
    (served / "course").mkdir()
    subprocess.run([*git, "clone", "-q", "--bare", str(work), str(served / "course" / "student-edition")], check=True)
    return (served / "course" / "student-edition").as_uri()


@pytest.fixture(scope="module")
def hub(tmp_path_factory) -> Iterator[tuple[str, Path]]:
    """A JupyterHub on 127.0.0.1 with a dummy login and a local single-user server; (its address, the homes)."""
    where = tmp_path_factory.mktemp("hub")
    port, hub_port, api_port = free_port(), free_port(), free_port()
    (where / "jupyterhub_config.py").write_text(f"""
c = get_config()  # noqa
c.JupyterHub.bind_url = "http://127.0.0.1:{port}"
c.JupyterHub.hub_port = {hub_port}
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{api_port}"
c.ConfigurableHTTPProxy.command = [{str(PROXY)!r}]
c.JupyterHub.authenticator_class = "dummy"
c.DummyAuthenticator.allow_all = True
c.JupyterHub.spawner_class = "simple"
c.SimpleLocalProcessSpawner.home_dir_template = {str(where / 'home' / '{username}')!r}
c.Spawner.args = ["--allow-root"] if {os.geteuid() == 0} else []
c.Spawner.default_url = "/lab"
c.JupyterHub.db_url = "sqlite:///{where / 'hub.sqlite'}"
c.JupyterHub.cookie_secret_file = {str(where / 'cookie_secret')!r}
c.ConfigurableHTTPProxy.pid_file = {str(where / 'proxy.pid')!r}
""")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    log = (where / "hub.log").open("w")
    process = subprocess.Popen([sys.executable, "-m", "jupyterhub", "-f", str(where / "jupyterhub_config.py")],
                               cwd=where, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert process.poll() is None, (where / "hub.log").read_text()[-3000:]
                time.sleep(0.5)
        yield url, where / "home"
    finally:
        os.killpg(process.pid, 15)  # the hub, its proxy and the single-user servers it started
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:  # a kernel caught starting waits out its own shutdown timeouts: no test
            os.killpg(process.pid, 9)
            process.wait(timeout=30)
        kill_left_in(where)
        log.close()


def kill_left_in(folder: Path) -> None:
    """Kill what the hub left running in `folder` (a single-user server in its own session outlives a hub that
    was killed, and its kernel with it): their working folder or command line is in it."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cwd = os.readlink(proc / "cwd")
            command = (proc / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue  # gone, or not ours to read
        if cwd.startswith(str(folder)) or str(folder) in command:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(proc.name), 9)


def test_the_jupyterhub_button_opens_lab_1_in_jupyterlab(browser: Browser, hub, edition_repository):
    url, homes = hub
    link = hub_link(url, edition_repository, LAB1)
    assert link.startswith(f"{url}/hub/user-redirect/git-pull?repo=") and "urlpath=lab/tree/student-edition/" in link
    context = browser.new_context()
    page = context.new_page()
    page.goto(link)
    page.wait_for_url(re.compile(r".*/hub/login.*"), timeout=30_000)  # the hub asks who the student is
    page.fill("#username_input", "student")
    page.fill("#password_input", "any")
    page.click("#login_submit")
    page.wait_for_url(re.compile(rf".*/user/student/lab/tree/student-edition/{LAB1}\.ipynb"), timeout=120_000)
    assert (homes / "student" / "student-edition" / f"{LAB1}.ipynb").is_file()  # nbgitpuller's clone
    page.wait_for_selector(".jp-Notebook .jp-MarkdownOutput h1", timeout=120_000)
    assert page.inner_text(".jp-Notebook .jp-MarkdownOutput h1").startswith("Lab 1")
    context.close()
