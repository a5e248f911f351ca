"""Where the dvc command and the DVC project are (for commands that run dvc)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from fclf.errors import FclfError


def dvc_executable() -> str:
    """The dvc next to this Python (the project's venv), else the one on PATH."""
    found = shutil.which("dvc", path=str(Path(sys.executable).parent)) or shutil.which("dvc")
    if found is None:
        raise FclfError("the dvc command is not installed (pip install dvc)")
    return found


def find_dvc_root(start: Path) -> Path | None:
    for folder in (start, *start.parents):
        if (folder / ".dvc").is_dir():
            return folder
    return None
