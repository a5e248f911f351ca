"""What goes into `fclf transfer`: the arguments, the source's attributes, the files.

`parse_assignments` and `check_attributes_match` check the command line against the model;
`read_source` reads the source's attributes with the probes (overridden where given) and
`make_target` sets the target from them; `load_splits`, `clip_folder`, `embed_image` and
`celeba_image_dir` read the embeddings, embed a new image with the local CLIP and find the
CelebA images (heavy imports stay inside the functions that need them).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fclf.attributes import CELEBA_ATTRIBUTES
from fclf.data.embeddings_io import EmbeddingSplit
from fclf.errors import DataError, FclfError
from fclf.evaluate.probes import AttributeProbes

SPLITS = ("train", "val", "test")
IMAGE_DIR = "img_align_celeba"  # = fclf.data.celeba.IMAGE_DIR (not imported: keeps this light)


# --- arguments -----------------------------------------------------------------------------


def _suggest(name: str, names: Sequence[str]) -> str:
    by_lower = {n.lower(): n for n in names}
    if name.lower() in by_lower:
        return f" (did you mean {by_lower[name.lower()]!r}?)"
    close = difflib.get_close_matches(name.lower(), list(by_lower), n=1, cutoff=0.5)
    return f" (did you mean {by_lower[close[0]]!r}?)" if close else ""


def parse_assignments(
    items: Sequence[str], names: Sequence[str], option: str = "--set"
) -> dict[str, int]:
    """`["Smiling=1", "Eyeglasses=0"]` -> {"Smiling": 1, "Eyeglasses": 0}, checked against
    the model's attribute `names`; every problem is an FclfError naming the item."""
    out: dict[str, int] = {}
    for item in items:
        name, sep, value = item.partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not name:
            raise FclfError(
                f"{option} {item!r}: expected NAME=0 or NAME=1, e.g. {option} {names[0]}=1"
            )
        if name not in names:
            hint = _suggest(name, names)
            if not hint and name in CELEBA_ATTRIBUTES:
                hint = " (a CelebA attribute, but the model was not trained on it)"
            raise FclfError(
                f"{option} {item}: unknown attribute {name!r}{hint}; the model's attributes "
                f"are {', '.join(names)}"
            )
        if value not in ("0", "1"):
            raise FclfError(f"{option} {item}: the value must be 0 or 1, not {value!r}")
        if out.get(name, int(value)) != int(value):
            raise FclfError(f"{option}: {name} is given both as 0 and as 1")
        out[name] = int(value)
    return out


def check_attributes_match(
    model_names: Sequence[str], data_names: Sequence[str], model_where: str, data_where: str
) -> None:
    if tuple(model_names) != tuple(data_names):
        raise DataError(
            f"{model_where} was trained on attributes {list(model_names)} but {data_where} "
            f"has {list(data_names)}; use the embeddings the model was trained on"
        )


# --- the source and the target -------------------------------------------------------------


@dataclass(frozen=True)
class SourceReading:
    """The source's attributes: the probes' reading, overridden where given.

    `attributes` is the source the flow is told (delta = target - attributes), so the given
    values decide which attributes change; `overridden` marks the given values the probes
    read the other way.
    """

    probabilities: np.ndarray  # (k,) probe probabilities
    attributes: np.ndarray  # (k,) int8 0/1 used as the source
    given: np.ndarray  # (k,) bool: from the user, not the probes

    @property
    def probe_reading(self) -> np.ndarray:
        """(k,) int8: what the probes read (probability >= 0.5), overrides ignored."""
        return (np.asarray(self.probabilities) >= 0.5).astype(np.int8)

    @property
    def overridden(self) -> np.ndarray:
        """(k,) bool: given values that contradict the probes' reading."""
        return np.asarray(self.given, bool) & (self.probe_reading != self.attributes)


def read_source(
    probes: AttributeProbes, z: np.ndarray, given: Mapping[str, int] | None = None
) -> SourceReading:
    """The probes' reading of `z`, with the `given` values put in its place."""
    names = probes.attribute_names
    probs = probes.predict_proba(np.asarray(z)[None])[0]
    attrs = (probs >= 0.5).astype(np.int8)
    mask = np.zeros(len(names), bool)
    for name, value in (given or {}).items():
        attrs[names.index(name)] = value
        mask[names.index(name)] = True
    return SourceReading(probs, attrs, mask)


def make_target(
    names: Sequence[str], source: SourceReading, overrides: Mapping[str, int]
) -> np.ndarray:
    """Source attributes with `overrides`; a target equal to the source is an FclfError."""
    target = source.attributes.copy()
    for name, value in overrides.items():
        target[list(names).index(name)] = value
    if np.array_equal(target, source.attributes):
        said = ", ".join(
            f"{n}={int(v)} ({'given' if g else f'probe {p:.2f}'})"
            for n, v, g, p in zip(
                names, source.attributes, source.given, source.probabilities, strict=True
            )
            if n in overrides
        )
        raise FclfError(
            f"the target equals the source: the source already has {said or 'these values'}; "
            "--set at least one attribute to the other value"
        )
    return target


# --- files ---------------------------------------------------------------------------------


def load_splits(folder: Path) -> dict[str, EmbeddingSplit]:
    """train (needed: the probes are fitted on it) and whichever of val/test exist; they must
    agree on attributes, dimension and encoder."""
    from fclf.data.embeddings_io import read_split

    folder = Path(folder)
    splits = {"train": read_split(folder / "train.parquet")}
    for name in SPLITS[1:]:
        if (folder / f"{name}.parquet").exists():
            splits[name] = read_split(folder / f"{name}.parquet")
    train = splits["train"]
    for name, split in splits.items():
        where = folder / f"{name}.parquet"
        if split.attribute_names != train.attribute_names or split.dim != train.dim:
            raise DataError(
                f"{where}: attributes/dim {list(split.attribute_names)}/{split.dim} differ from "
                f"train.parquet's {list(train.attribute_names)}/{train.dim}"
            )
        if split.metadata.get("encoder") != train.metadata.get("encoder"):
            raise DataError(
                f"{where}: encoder {split.metadata.get('encoder')!r} differs from train.parquet's "
                f"{train.metadata.get('encoder')!r}; re-run the embed stage"
            )
    return splits


def is_synthetic(metadata: Mapping[str, Any]) -> bool:
    return metadata.get("source") != "celeba"


def clip_folder(metadata: Mapping[str, Any], clip: Path | None, where: Path) -> Path:
    """The CLIP folder to embed a new image with: `clip`, else the one the embeddings record."""
    if clip is not None:
        return Path(clip)
    if is_synthetic(metadata):
        raise FclfError(
            f"--image needs a CLIP model: the embeddings in {where} are synthetic "
            f"({metadata.get('encoder')!r}), not made by an image encoder; pass --clip FOLDER "
            "(and use embeddings made with it, or the edit means little)"
        )
    recorded = (metadata.get("encoder_info") or {}).get("path")
    if not recorded:
        raise FclfError(f"{where}: the metadata does not record the CLIP folder; pass --clip")
    if not Path(recorded).is_dir():
        raise FclfError(
            f"{where}: the embeddings were made with the CLIP folder {recorded!r}, which is not "
            "there from the current directory; pass --clip FOLDER"
        )
    return Path(recorded)


def embed_image(image: Path, folder: Path, metadata: Mapping[str, Any], where: Path) -> np.ndarray:
    """(d,) unit embedding of one image with the same preprocessing and model as the embed
    stage (and its precision); a CLIP folder other than the embeddings' is an error."""
    from fclf.data.clip_encoder import load_clip_encoder
    from fclf.data.clip_preprocess import load_pixels

    info = metadata.get("encoder_info") or {}
    encoder = load_clip_encoder(folder, "cpu", info.get("precision", "fp32"))
    recorded = info.get("sha256")
    if recorded and recorded != encoder.identity["sha256"]:
        raise DataError(
            f"--clip {folder}: sha256 {encoder.identity['sha256'][:16]} is not the encoder of "
            f"{where} ({metadata.get('encoder')}); embeddings of different models do not mix"
        )
    pixels, why = load_pixels(Path(image), encoder.preprocess)
    if pixels is None:
        raise DataError(f"--image {image}: {'file not found' if why == 'missing' else why}")
    return encoder.encode(pixels[None])[0]


def celeba_image_dir(metadata: Mapping[str, Any], celeba_root: Path | None) -> Path:
    """`<celeba root>/img_align_celeba`: from --celeba-root, else from the metadata."""
    root = celeba_root if celeba_root is not None else metadata.get("celeba_root")
    if root is None:
        raise FclfError(
            "the embeddings do not record where the CelebA images are; pass --celeba-root "
            "(the folder holding img_align_celeba/)"
        )
    folder = Path(root) / IMAGE_DIR
    if not folder.is_dir():
        raise DataError(f"{folder}: CelebA image folder not found (set --celeba-root)")
    return folder
