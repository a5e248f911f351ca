"""A local CLIP image encoder: pixels -> L2-normalised image projections (image_embeds).

The checkpoint is a local Hugging Face folder holding a full CLIPModel or a
vision-only CLIPVisionModelWithProjection. It is loaded with
`local_files_only=True` and the hub switched offline: a hub id or a missing
folder is a DataError, never a download. torch and transformers (the `clip`
extra) are imported only when an encoder is built.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fclf.data.clip_preprocess import ClipPreprocess, load_preprocess
from fclf.errors import DataError, FclfError

MODEL_TYPES = {"clip": "CLIPModel", "clip_vision_model": "CLIPVisionModelWithProjection"}
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")  # in transformers' order of preference
DOWNLOAD_HINT = (
    "this pipeline never downloads models: on a machine with internet run "
    "`huggingface-cli download openai/clip-vit-base-patch32 --local-dir <folder>`, copy the "
    "folder here and set embed.model_path to it"
)


def check_model_dir(model_path: str | Path | None) -> Path:
    """The checkpoint folder, or a DataError saying why it is not one (cheap: no imports)."""
    if not model_path:
        raise DataError(f"embed.model_path is not set; {DOWNLOAD_HINT}")
    folder = Path(model_path)
    if not folder.exists():
        raise DataError(
            f"embed.model_path {str(model_path)!r}: no such local folder; {DOWNLOAD_HINT}"
        )
    if not folder.is_dir():
        raise DataError(f"embed.model_path {str(folder)!r} is a file; expected a checkpoint folder")
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise DataError(
            f"{config_path}: not found; {folder} is not a Hugging Face checkpoint folder"
        )
    model_type = read_model_type(folder)
    if model_type not in MODEL_TYPES:
        raise DataError(
            f"{config_path}: model_type {model_type!r} is not a CLIP checkpoint "
            f"(expected one of {sorted(MODEL_TYPES)})"
        )
    weight_files(folder)
    return folder


def read_model_type(folder: Path) -> Any:
    path = folder / "config.json"
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not valid JSON ({exc})") from None
    return config.get("model_type") if isinstance(config, dict) else None


def weight_files(folder: Path) -> list[Path]:
    """The weight files transformers will load (single file or the shards of an index)."""
    for name in WEIGHT_FILES:
        if (folder / name).is_file():
            return [folder / name]
        index = folder / f"{name}.index.json"
        if index.is_file():
            try:
                weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
                shards = sorted(set(weight_map.values()))
            except (ValueError, KeyError, TypeError) as exc:
                raise DataError(f"{index}: not a valid weight index ({exc})") from None
            missing = [s for s in shards if not (folder / s).is_file()]
            if missing:
                raise DataError(f"{index}: shard(s) {missing} not found in {folder}")
            return [index, *(folder / s for s in shards)]
    raise DataError(f"{folder}: no weights ({' or '.join(WEIGHT_FILES)}, or a sharded index)")


def checkpoint_hash(folder: Path) -> str:
    """sha256 over config.json, preprocessor_config.json (if any) and the weights used."""
    digest = hashlib.sha256()
    files = [folder / "config.json", folder / "preprocessor_config.json", *weight_files(folder)]
    for path in files:
        if not path.is_file():
            continue
        digest.update(path.name.encode() + b"\0")
        with path.open("rb") as f:
            while block := f.read(1 << 20):
                digest.update(block)
    return digest.hexdigest()


@dataclass
class ClipEncoder:
    """Vision tower + projection, ready to encode preprocessed pixel batches."""

    vision_model: Any  # transformers CLIPVisionTransformer
    projection: Any  # torch.nn.Linear
    preprocess: ClipPreprocess
    device: str
    precision: str
    identity: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        import torch

        dtype = torch.bfloat16 if self.precision == "bf16" else torch.float32
        self._dtype = dtype
        for module in (self.vision_model, self.projection):
            module.to(device=self.device, dtype=dtype).eval()

    @property
    def dim(self) -> int:
        return int(self.projection.out_features)

    def encode(self, pixels: np.ndarray) -> np.ndarray:
        """(n, 3, H, W) float32 pixels -> (n, dim) float32 unit vectors."""
        import torch

        with torch.inference_mode():
            x = torch.from_numpy(pixels).to(self.device, self._dtype)
            pooled = self.vision_model(pixel_values=x).pooler_output
            embeds = self.projection(pooled).float()
            embeds = embeds / embeds.norm(dim=-1, keepdim=True)
        out = embeds.cpu().numpy()
        if not np.isfinite(out).all():
            raise FclfError("the CLIP encoder produced non-finite embeddings")
        return out


def import_transformers() -> Any:
    """transformers with the hub switched offline, or a clear error if the extra is missing."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    try:
        import transformers
    except ImportError:
        raise FclfError(
            "encoding images needs the clip extra (transformers): pip install -e '.[clip]'"
        ) from None
    transformers.logging.disable_progress_bar()
    return transformers


def load_clip_encoder(
    model_path: str | Path, device: str = "auto", precision: str = "fp32"
) -> ClipEncoder:
    """Load a local checkpoint folder (never downloads); see the module docstring."""
    folder = check_model_dir(model_path)
    from fclf.devices import resolve_device

    device = str(resolve_device(device, "embed.device"))
    transformers = import_transformers()
    model_type = read_model_type(folder)
    cls = getattr(transformers, MODEL_TYPES[model_type])
    try:
        model, info = cls.from_pretrained(folder, local_files_only=True, output_loading_info=True)
    except Exception as exc:  # a corrupt file can fail in many ways (safetensors, torch.load)
        raise DataError(
            f"{folder}: could not load the CLIP checkpoint ({type(exc).__name__}: {exc})"
        ) from None
    missing = info.get("missing_keys", ())
    untrained = [k for k in missing if k.startswith(("vision_model", "visual_projection"))]
    if untrained:
        raise DataError(
            f"{folder}: checkpoint lacks vision weights (e.g. {sorted(untrained)[0]}); "
            "they would be random"
        )
    preprocess = load_preprocess(folder)
    vision_config = model.config.vision_config if model_type == "clip" else model.config
    image_size = vision_config.image_size
    if (preprocess.crop_height, preprocess.crop_width) != (image_size, image_size):
        raise DataError(
            f"{folder}: preprocessing crops {preprocess.crop_height}x{preprocess.crop_width} but "
            f"the model expects {image_size}x{image_size} images"
        )
    identity = {
        "name": folder.resolve().name,
        "path": str(model_path),
        "model_type": model_type,
        "sha256": checkpoint_hash(folder),
    }
    return ClipEncoder(
        model.vision_model, model.visual_projection, preprocess,
        device, precision, identity,
    )
