"""Atomic file writes: write to a temp file beside the target, then rename.

A crash mid-write leaves the previous file (or nothing), never half a file.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fclf.errors import FclfError


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temp path in the target's folder; rename it onto `path` on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        # mkstemp creates the file 0600; give the result the mode a plain open() would.
        os.chmod(tmp_path, 0o666 & ~_umask())
        yield tmp_path
        _fsync(tmp_path)  # the data must be on disk before the rename makes it visible
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | Path, data: Any) -> None:
    write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def torch_save(obj: Any, path: str | Path) -> None:
    """Atomic torch.save whose bytes depend only on `obj`.

    torch.save names the zip archive's root folder after the file it writes, so
    saving straight to a random temp name gives different bytes (and a different
    md5 in dvc.lock) for identical weights; saving to memory first does not.
    """
    import io

    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(buffer.getvalue())


def torch_load(path: str | Path, what: str = "checkpoint") -> Any:
    """Load a torch file with weights_only=True (no arbitrary code runs on load).

    Missing or unreadable files raise FclfError naming the path and `what` it should be.
    """
    import torch

    path = Path(path)
    if not path.exists():
        raise FclfError(f"{path}: {what} not found")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt or foreign file
        raise FclfError(f"{path}: not a readable {what} ({exc})") from None
