"""A Sphinx extension for this book: a header button only for an address the course has set.

_config.yml keeps the course's addresses in one block (`repository.url`, `launch_buttons.jupyterhub_url`,
`launch_buttons.binderhub_url`, `launch_buttons.colab_url`), empty by default. Jupyter Book would fail on a repository button without an
address, and the theme would build broken launch links without a repository, so this extension turns each button on
only when what it needs is set.
"""

from __future__ import annotations

from typing import Any

from sphinx.application import Sphinx
from sphinx.config import Config
from sphinx.util import logging

LOGGER = logging.getLogger(__name__)
#: Launch buttons that open the page's notebook from the repository (both need its address).
LAUNCHERS = ("jupyterhub_url", "binderhub_url")


def show_set_buttons(app: Sphinx, config: Config) -> None:
    """Repository button iff repository_url is set; a launcher iff its address and the repository's are set (Colab:
    a GitHub repository's; Colab's own address is set by default, so no warning without one)."""
    options = config.html_theme_options
    repository = (options.get("repository_url") or "").strip()
    options["use_repository_button"] = bool(repository)
    launch = dict(options.get("launch_buttons") or {})
    for key in LAUNCHERS:
        if launch.get(key) and not repository:
            LOGGER.warning(f"launch_buttons.{key} is set but repository.url is not: no {key[:-4]} button "
                           f"(it opens the notebooks from the repository)")
            launch[key] = ""
    if "github.com/" not in repository:  # Colab opens notebooks from GitHub only (and installs the edition from there)
        launch["colab_url"] = ""
    options["launch_buttons"] = launch


def setup(app: Sphinx) -> dict[str, Any]:
    """Register the handler (after Jupyter Book has put _config.yml into the theme options)."""
    app.connect("config-inited", show_set_buttons, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
