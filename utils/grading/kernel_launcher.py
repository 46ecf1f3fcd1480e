"""Starts the grading kernel: `python -c <this file's text> <memory bytes> <output chars> -f <connection file>`.

Runs before ipykernel starts, so nothing the student writes can undo it:
- RLIMIT_DATA caps memory (not RLIMIT_AS: torch, pyarrow and glibc reserve gigabytes of address space they never
  touch); no core dumps.
- stdout/stderr writes are capped per execution (a student printing 100 MB costs nothing). The cap sits on
  the OutStream class, below IPython's per-cell output capture, and is counted per request (parent msg_id).
"""

import resource
import sys

memory, output_limit = int(sys.argv.pop(1)), int(sys.argv.pop(1))
if memory > 0:
    resource.setrlimit(resource.RLIMIT_DATA, (memory, memory))
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

from ipykernel import iostream  # noqa: E402
from ipykernel.kernelapp import launch_new_instance  # noqa: E402

_write = iostream.OutStream.write
_spent: dict = {}


def _capped_write(self, string):
    """OutStream.write, dropping what one execution prints beyond `output_limit` characters."""
    request = (self.parent_header or {}).get("msg_id")
    previous, used = _spent.get(id(self), (None, 0))
    used = used if previous == request else 0
    if isinstance(string, str) and used + len(string) > output_limit:
        string = string[: max(0, output_limit - used)]
        if used <= output_limit:
            string += f"\n[output cut by the grader: more than {output_limit} characters]\n"
        _spent[id(self)] = (request, output_limit + 1)
        return _write(self, string) if string else 0
    _spent[id(self)] = (request, used + (len(string) if isinstance(string, str) else 0))
    return _write(self, string)


iostream.OutStream.write = _capped_write
iostream.OutStream.uncapped_write = _write
launch_new_instance()
