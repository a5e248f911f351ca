"""Test helpers: a miniature CelebA release and tiny random-weight CLIP checkpoints.

The miniature release has the official layout and text formats (count line,
header, right-aligned -1/1 values, partition and identity files) and small
JPEGs of varied sizes (non-square both ways, smaller and larger than 224).
The tiny CLIPs (hidden 32, 2 layers, patch 32, image 224) use CLIP's real
preprocessing, so they exercise the same code paths as ViT-B/32.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from fclf.attributes import CELEBA_ATTRIBUTES

SIZES = [(178, 218), (218, 178), (60, 40), (300, 260), (224, 224), (97, 301)]  # (width, height)
SPLIT_OF = (0.6, 0.2)  # train and val fractions; the rest is test


@dataclass
class MiniCeleba:
    root: Path
    names: list[str]
    splits: np.ndarray  # (N,) 0/1/2
    identities: np.ndarray  # (N,)
    values: np.ndarray  # (N, 40) -1/1 as in the attribute file

    @property
    def attr_file(self) -> Path:
        return self.root / "list_attr_celeba.txt"

    @property
    def partition_file(self) -> Path:
        return self.root / "list_eval_partition.txt"

    @property
    def identity_file(self) -> Path:
        return self.root / "identity_CelebA.txt"

    def image(self, name: str) -> Path:
        return self.root / "img_align_celeba" / name


def face_like_image(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    """A smooth random picture (compresses and decodes like a photo, unlike pure noise)."""
    coarse = Image.fromarray(rng.integers(0, 256, (4, 4, 3), dtype=np.uint8))
    smooth = np.asarray(coarse.resize((width, height), Image.Resampling.BILINEAR), np.int16)
    noise = rng.integers(-12, 13, (height, width, 3))
    return Image.fromarray(np.clip(smooth + noise, 0, 255).astype(np.uint8))


def write_lines(path: Path, lines: list[str], newline: str = "\n") -> None:
    path.write_bytes(("".join(line + newline for line in lines)).encode())


def write_mini_celeba(
    root: Path, n: int = 30, seed: int = 0, identity_file: bool = True, newline: str = "\n"
) -> MiniCeleba:
    """Write `n` images and the three text files under `root`, like the official release."""
    rng = np.random.default_rng(seed)
    image_dir = root / "img_align_celeba"
    image_dir.mkdir(parents=True, exist_ok=True)
    names = [f"{i + 1:06d}.jpg" for i in range(n)]
    for i, name in enumerate(names):
        width, height = SIZES[i % len(SIZES)]
        face_like_image(rng, width, height).save(image_dir / name, quality=90)
    n_train, n_val = int(n * SPLIT_OF[0]), int(n * SPLIT_OF[1])
    splits = np.array([0] * n_train + [1] * n_val + [2] * (n - n_train - n_val))
    identities = np.arange(n) // 3 + 1  # 3 images per person; people do not cross splits
    values = rng.choice(np.array([-1, 1]), size=(n, len(CELEBA_ATTRIBUTES)))
    header = " ".join(CELEBA_ATTRIBUTES) + " "  # the official header ends with a space
    rows = [
        f"{name} " + " ".join(f"{v:2d}" for v in row)
        for name, row in zip(names, values, strict=True)
    ]
    write_lines(root / "list_attr_celeba.txt", [str(n), header, *rows], newline)
    partition = [f"{a} {s}" for a, s in zip(names, splits, strict=True)]
    write_lines(root / "list_eval_partition.txt", partition, newline)
    if identity_file:
        ids = [f"{a} {i}" for a, i in zip(names, identities, strict=True)]
        write_lines(root / "identity_CelebA.txt", ids, newline)
    return MiniCeleba(root, names, splits, identities, values)


TINY_VISION = {
    "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
    "num_attention_heads": 4, "patch_size": 32, "image_size": 224, "projection_dim": 16,
}
TINY_TEXT = {
    "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
    "num_attention_heads": 4, "vocab_size": 64, "max_position_embeddings": 16,
    "bos_token_id": 0, "eos_token_id": 1, "pad_token_id": 1,
}


def save_tiny_clip(folder: Path, kind: str = "full", seed: int = 0) -> Path:
    """Save a random-weight CLIPModel ('full') or CLIPVisionModelWithProjection ('vision')."""
    import torch
    import transformers
    from transformers import CLIPConfig, CLIPModel, CLIPVisionConfig, CLIPVisionModelWithProjection

    # transformers >= 5 names the PIL/numpy processor CLIPImageProcessorPil
    processor = getattr(transformers, "CLIPImageProcessorPil", transformers.CLIPImageProcessor)

    torch.manual_seed(seed)
    if kind == "full":
        config = CLIPConfig(text_config=TINY_TEXT, vision_config=TINY_VISION, projection_dim=16)
        model = CLIPModel(config)
    elif kind == "vision":
        model = CLIPVisionModelWithProjection(CLIPVisionConfig(**TINY_VISION))
    else:
        raise ValueError(kind)
    model.save_pretrained(folder)
    processor().save_pretrained(folder)
    return folder
