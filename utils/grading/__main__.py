"""Entry point: `python -m utils.grading --help`."""

from utils.grading.cli import main

raise SystemExit(main())
