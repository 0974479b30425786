"""Which code this is: the git commit, asked without importing anything heavy (the benchmarks' records use it too)."""

from __future__ import annotations

import subprocess
from pathlib import Path


def git_commit() -> str:
    """The commit checked out where this code lies, or "unknown" (no git, or not a repository)."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
        return out.stdout.strip() or "unknown"
    except OSError:
        return "unknown"
