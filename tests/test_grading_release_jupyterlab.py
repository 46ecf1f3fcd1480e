"""Released labs open in JupyterLab without being marked unsaved.

JupyterLab 4 (notebook panel `_updateSpec` / `_updateLanguage`) writes, once the kernel is up, the kernelspec
{name, display_name, language} from the kernel's spec and `language_info` from its kernel_info reply; the shared
model marks the notebook dirty unless the values are deep-equal to what the file holds. So a released lab must
hold exactly what a live kernel of the course environment reports.
"""

from __future__ import annotations

import json
from pathlib import Path

from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import start_new_kernel

from utils.grading.release import release_all

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures" / "grading" / "solutions"


def test_released_metadata_is_what_jupyterlab_writes():
    manager, client = start_new_kernel(kernel_name="python3")
    try:
        reply = client.kernel_info(reply=True, timeout=60)["content"]
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
    spec = KernelSpecManager().get_kernel_spec("python3")
    expected = {"kernelspec": {"name": "python3", "display_name": spec.display_name, "language": spec.language},
                "language_info": reply["language_info"]}
    for lab in sorted((ROOT / "labs").glob("lab*/lab*.ipynb")):
        metadata = json.loads(lab.read_text(encoding="utf-8"))["metadata"]
        assert {k: metadata[k] for k in expected} == expected, f"{lab}: run `make release`"


def test_check_accepts_a_release_made_with_another_python(tmp_path):
    release_all(FIXTURES, tmp_path)
    target = tmp_path / "labdemo" / "labdemo.ipynb"
    notebook = json.loads(target.read_text(encoding="utf-8"))
    notebook["metadata"]["language_info"]["version"] = "3.99.0"
    target.write_text(json.dumps(notebook, indent=1, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
    assert release_all(FIXTURES, tmp_path, ["labdemo"], check=True) == []
    notebook["metadata"]["kernelspec"]["display_name"] = "Python 3"  # what JupyterLab would rewrite
    target.write_text(json.dumps(notebook, indent=1, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
    assert release_all(FIXTURES, tmp_path, ["labdemo"], check=True)
