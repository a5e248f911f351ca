"""Turning a `auto|cpu|cuda` setting into a torch device, with a clear error."""

from __future__ import annotations

import torch

from fclf.errors import FclfError


def resolve_device(name: str, setting: str = "device") -> torch.device:
    """`auto` picks CUDA when torch sees it; asking for `cuda` without it is an error
    naming the `setting` (e.g. 'train.device')."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise FclfError(f"{setting} is 'cuda' but torch sees no CUDA device (use auto or cpu)")
    return torch.device(name)
