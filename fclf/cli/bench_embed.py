"""`fclf bench embed`: end-to-end image encoding throughput on this machine.

Times the embed stage's own path (JPEG file -> decode -> CLIP preprocessing ->
encoder -> unit vectors) for a full-size CLIP ViT-B/32 vision tower with random
weights (speed does not depend on the weights, so nothing is downloaded), on
CelebA-sized (178x218) JPEGs. Reports the median over batches, after warm-up.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from fclf.data.clip_preprocess import ClipPreprocess, load_pixels, map_batches

VIT_B_32 = {
    "hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12,
    "num_attention_heads": 12, "patch_size": 32, "image_size": 224, "projection_dim": 512,
}
CELEBA_SIZE = (178, 218)  # width, height of img_align_celeba


def _write_jpegs(folder: Path, n: int, seed: int) -> list[Path]:
    """Smooth random pictures: they compress and decode like photos, unlike pure noise."""
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        coarse = Image.fromarray(rng.integers(0, 256, (6, 5, 3), dtype=np.uint8))
        smooth = np.asarray(coarse.resize(CELEBA_SIZE, Image.Resampling.BILINEAR), np.int16)
        noisy = np.clip(smooth + rng.integers(-10, 11, smooth.shape), 0, 255).astype(np.uint8)
        paths.append(folder / f"{i:06d}.jpg")
        Image.fromarray(noisy).save(paths[-1], quality=95)
    return paths


def bench_embed(
    batches: int = 5,
    batch_size: int = 32,
    precisions: tuple[str, ...] = ("fp32", "bf16"),
    device: str = "auto",
    workers: int = 2,
    warmup: int = 1,
    seed: int = 0,
    vision_config: dict[str, int] | None = None,
) -> dict[str, Any]:
    """images/s (median over `batches` timed batches) per precision; see the module docstring.

    `vision_config` replaces the ViT-B/32 architecture (tests use a tiny one).
    """
    import torch

    from fclf.data.clip_encoder import ClipEncoder, import_transformers
    from fclf.devices import resolve_device

    transformers = import_transformers()
    device = str(resolve_device(device))
    torch.manual_seed(seed)
    config = transformers.CLIPVisionConfig(**(vision_config or VIT_B_32))
    model = transformers.CLIPVisionModelWithProjection(config)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="fclf-bench-") as tmp:
        files = _write_jpegs(Path(tmp), batch_size, seed)
        paths = files * (warmup + batches)
        for precision in precisions:
            encoder = ClipEncoder(
                model.vision_model, model.visual_projection, ClipPreprocess(), device, precision
            )
            load = partial(load_pixels, preprocess=encoder.preprocess)
            seconds = []
            start = time.perf_counter()
            for batch in map_batches(load, paths, batch_size, workers):
                encoder.encode(np.stack([pixels for pixels, _ in batch]))  # returns on the host
                now = time.perf_counter()
                seconds.append(now - start)
                start = now
            median = statistics.median(seconds[warmup:])
            results[precision] = {
                "images_per_s": round(batch_size / median, 2),
                "batch_seconds_median": round(median, 6),
                "batch_seconds": [round(s, 6) for s in seconds[warmup:]],
            }
    return {
        "benchmark": "embed",
        "model": "CLIP ViT-B/32 vision tower + projection, random weights"
        if vision_config is None else f"custom CLIP vision tower {vision_config}",
        "pipeline": "JPEG 178x218 file -> decode -> CLIP preprocess -> encoder -> unit vectors",
        "device": device,
        "torch_threads": torch.get_num_threads(),
        "batch_size": batch_size,
        "batches": batches,
        "warmup_batches": warmup,
        "workers": workers,
        "results": results,
    }
