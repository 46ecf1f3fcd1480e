"""The site's header buttons: one only for an address _config.yml sets (book/_ext/course_links.py)."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "book" / "_ext"))

from course_links import show_set_buttons  # noqa: E402


def theme(repository: str = "", **launch: str) -> dict:
    config = SimpleNamespace(html_theme_options={"repository_url": repository, "launch_buttons": {
        "notebook_interface": "jupyterlab", "jupyterhub_url": "", "binderhub_url": "", "colab_url": "x", **launch}})
    show_set_buttons(None, config)
    return config.html_theme_options


def test_nothing_set_shows_no_button():
    options = theme()
    assert options["use_repository_button"] is False
    assert not any(options["launch_buttons"].get(k) for k in ("jupyterhub_url", "binderhub_url", "colab_url"))


def test_a_set_address_shows_its_button():
    options = theme("https://github.com/a/b", jupyterhub_url="https://hub.a.org")
    assert options["use_repository_button"] is True
    assert options["launch_buttons"]["jupyterhub_url"] == "https://hub.a.org"
    assert options["launch_buttons"]["colab_url"] == "x"


def test_colab_only_for_a_github_repository():
    assert theme("https://gitlab.com/a/b")["launch_buttons"]["colab_url"] == ""


def test_a_launcher_without_repository_is_dropped():
    assert theme(binderhub_url="https://binder.a.org")["launch_buttons"]["binderhub_url"] == ""


def test_the_config_has_no_placeholder_address():
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    assert config["repository"]["url"] == ""
    assert {k: v for k, v in config["launch_buttons"].items() if k.endswith("_url")} == {
        "jupyterhub_url": "", "binderhub_url": "", "colab_url": "https://colab.research.google.com"}
    assert "course_links" in config["sphinx"]["local_extensions"]
