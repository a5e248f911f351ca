"""CLIP's image preprocessing in PIL + numpy, and a decode pipeline feeding the encoder.

Matches transformers' CLIPImageProcessor (without needing torchvision): resize
the shorter side to `shortest_edge` with bicubic filtering (the longer side is
truncated to an int, as there), centre-crop, rescale by 1/255 (computed in
float64, then float32), normalise with CLIP's mean/std.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from PIL import Image

from fclf.errors import DataError

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
PREPROCESSOR_FILE = "preprocessor_config.json"
_DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError)


@dataclass(frozen=True)
class ClipPreprocess:
    """One image -> a (3, crop_height, crop_width) float32 array."""

    shortest_edge: int = 224
    crop_height: int = 224
    crop_width: int = 224
    mean: tuple[float, float, float] = CLIP_MEAN
    std: tuple[float, float, float] = CLIP_STD
    rescale_factor: float = 1 / 255
    resample: int = int(Image.Resampling.BICUBIC)

    def __call__(self, image: Image.Image) -> np.ndarray:
        if image.mode != "RGB":
            image = image.convert("RGB")
        width, height = image.size
        short, long = (width, height) if width <= height else (height, width)
        new_short, new_long = self.shortest_edge, int(self.shortest_edge * long / short)
        size = (new_short, new_long) if width <= height else (new_long, new_short)
        pixels = np.asarray(image.resize(size, resample=Image.Resampling(self.resample)))
        top = (size[1] - self.crop_height) // 2
        left = (size[0] - self.crop_width) // 2
        pixels = pixels[top : top + self.crop_height, left : left + self.crop_width]
        return np.stack([self._table[c][pixels[:, :, c]] for c in range(3)])

    @cached_property
    def _table(self) -> np.ndarray:
        """(3, 256) float32: each uint8 value rescaled and normalised per channel, with the
        same float64-then-float32 arithmetic as transformers (so results are identical)."""
        scaled = (np.arange(256, dtype=np.float64) * self.rescale_factor).astype(np.float32)
        mean = np.array(self.mean, np.float32)[:, None]
        return (scaled[None, :] - mean) / np.array(self.std, np.float32)[:, None]

    def as_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


def _square(value: Any, key: str, where: Path) -> tuple[int, int]:
    if isinstance(value, int):
        return value, value
    if isinstance(value, dict) and {"height", "width"} <= value.keys():
        return int(value["height"]), int(value["width"])
    raise DataError(f"{where}: unsupported {key} {value!r}; expected an int or height/width")


def load_preprocess(model_dir: Path) -> ClipPreprocess:
    """Preprocessing of a checkpoint folder: its preprocessor_config.json, else CLIP's defaults."""
    path = Path(model_dir) / PREPROCESSOR_FILE
    if not path.exists():
        return ClipPreprocess()
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise DataError(f"{path}: expected a JSON object")
    for flag in ("do_resize", "do_center_crop", "do_rescale", "do_normalize"):
        if raw.get(flag, True) is not True:
            raise DataError(f"{path}: {flag} = {raw[flag]!r} is not supported (CLIP uses true)")
    size = raw.get("size", 224)
    if isinstance(size, dict):
        if "shortest_edge" not in size:
            raise DataError(f"{path}: unsupported size {size!r}; expected shortest_edge")
        size = size["shortest_edge"]
    if not isinstance(size, int):
        raise DataError(f"{path}: unsupported size {size!r}")
    crop_h, crop_w = _square(raw.get("crop_size", 224), "crop_size", path)
    if max(crop_h, crop_w) > size:
        raise DataError(f"{path}: crop_size {crop_h}x{crop_w} is larger than size {size}")
    try:
        mean = tuple(float(v) for v in raw.get("image_mean", CLIP_MEAN))
        std = tuple(float(v) for v in raw.get("image_std", CLIP_STD))
        resample = int(Image.Resampling(raw.get("resample", int(Image.Resampling.BICUBIC))))
        factor = float(raw.get("rescale_factor", 1 / 255))
    except (TypeError, ValueError) as exc:
        raise DataError(
            f"{path}: bad image_mean/image_std/resample/rescale_factor ({exc})"
        ) from None
    if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
        raise DataError(f"{path}: image_mean and image_std need 3 values (std > 0)")
    return ClipPreprocess(size, crop_h, crop_w, mean, std, factor, resample)  # type: ignore[arg-type]


def decode_image(path: Path) -> Image.Image:
    """Fully decode an image file; OSError & co. propagate (callers decide)."""
    with Image.open(path) as image:
        image.load()
        return image.convert("RGB") if image.mode != "RGB" else image.copy()


def load_pixels(path: Path, preprocess: ClipPreprocess) -> tuple[np.ndarray | None, str | None]:
    """(pixels, None) or (None, why the image could not be read). Never a stand-in image."""
    try:
        image = decode_image(path)
    except FileNotFoundError:
        return None, "missing"
    except _DECODE_ERRORS as exc:
        return None, f"undecodable: {exc}".strip()
    return preprocess(image), None


T = TypeVar("T")
R = TypeVar("R")


def map_batches(
    fn: Callable[[T], R], items: Sequence[T], batch_size: int, workers: int, lookahead: int = 2
) -> Iterator[list[R]]:
    """`fn` over `items`, yielded in order as batches; `workers` threads work ahead.

    Pillow and numpy release the GIL while decoding/resizing, so threads overlap
    with each other and with the encoder; `lookahead` batches bound the memory.
    """
    starts = range(0, len(items), batch_size)
    if workers == 0:
        for start in starts:
            yield [fn(item) for item in items[start : start + batch_size]]
        return
    with ThreadPoolExecutor(max_workers=workers) as pool:
        queued: deque[list[Any]] = deque()
        pending = iter(starts)

        def submit_next() -> None:
            start = next(pending, None)
            if start is not None:
                queued.append([pool.submit(fn, x) for x in items[start : start + batch_size]])

        for _ in range(lookahead):
            submit_next()
        try:
            while queued:
                futures = queued.popleft()
                submit_next()
                yield [f.result() for f in futures]
        finally:
            for futures in queued:
                for f in futures:
                    f.cancel()
