"""The labs page's Kubernetes Indexed Job (book/labs.md), checked without a cluster: it parses, its pods' shards
are exactly 1/N..N/N with one output folder each (the index counts from 0, `--shard` from 1), and it keeps the
settings the sandbox needs inside a pod. Whether a live cluster accepts and runs it is not tested (the page says so).
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import yaml

from utils.grading.shard import parse_shard

PAGE = Path(__file__).resolve().parents[1] / "book" / "labs.md"


def page_job() -> dict:
    """The Job manifest the page prints (its one yaml block)."""
    (block,) = re.findall(r"^```yaml\n(.*?)^```", PAGE.read_text(encoding="utf-8"), re.M | re.S)
    return yaml.safe_load(block)


def pod_command(job: dict) -> str:
    """The shell command line each pod runs."""
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["sh", "-c"]
    (line,) = container["args"]
    return line


def expanded(word: str, index: int) -> str:
    """A double-quoted word of the pod's command as sh expands it in the pod with that completion index."""
    return subprocess.run(["sh", "-c", f'printf %s "{word}"'], env={**os.environ, "JOB_COMPLETION_INDEX": str(index)},
                          capture_output=True, text=True, check=True).stdout


def test_every_pod_grades_its_own_shard_of_n_into_its_own_folder():
    job = page_job()
    spec, line = job["spec"], pod_command(job)
    assert job["kind"] == "Job" and spec["completionMode"] == "Indexed"
    count = spec["completions"]
    (shard,) = re.findall(r'--shard "([^"]+)"', line)
    (out,) = re.findall(r'--out "([^"]+)"', line)
    shards = [parse_shard(expanded(shard, index)) for index in range(count)]  # indexes 0..completions-1
    assert [(s.index, s.count) for s in shards] == [(k, count) for k in range(1, count + 1)]
    folders = [expanded(out, index) for index in range(count)]
    assert len(set(folders)) == count and all(f.endswith(f"-shard{k}") for k, f in enumerate(folders, 1))
    assert spec["parallelism"] <= count and "\n" not in line.strip()  # a folded block: one command line


def test_the_pod_allows_the_sandbox_and_nothing_more():
    pod = page_job()["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    context, own = pod["securityContext"], container["securityContext"]
    assert pod["restartPolicy"] == "Never" and pod["automountServiceAccountToken"] is False
    # bubblewrap's user namespaces and fresh /proc: the pod's own user namespace, no runtime profile in the way
    assert pod["hostUsers"] is False and own["procMount"] == "Unmasked"
    assert context["seccompProfile"] == {"type": "Unconfined"} and context["appArmorProfile"] == {"type": "Unconfined"}
    # and still no root, no privilege escalation, no capability, no privileged container
    assert context["runAsNonRoot"] is True and context["runAsUser"] != 0
    assert own["allowPrivilegeEscalation"] is False and own["capabilities"] == {"drop": ["ALL"]}
    assert "privileged" not in own and not pod.get("hostPID") and not pod.get("hostNetwork")
