"""Attribute transfer for one face: flow its embedding toward target attributes.

`fclf transfer` starts from an embedding in the data (an image id) or from a
new image embedded with the local CLIP, reads its attributes with the frozen
probes (trained on the train split, as the evaluation does) unless they are
given, flows it with the model's own integrator toward the target attributes,
and follows the path with the probes and with its nearest real face: for
every step, the real embedding (of any split) with the highest cosine. There
is no decoder; the nearest real face stands in for the picture of each step.

The first part of this module is pure (arrays and objects in, arrays and
dicts out, vectorised: one face takes milliseconds); `transfer_from_files`
below it reads the model, embeddings, CLIP folder and images and checks that
they belong together. Nothing here reads params.yaml.
"""

from __future__ import annotations

import difflib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fclf.attributes import CELEBA_ATTRIBUTES
from fclf.embeddings_io import EmbeddingSplit
from fclf.errors import DataError, FclfError
from fclf.probes import AttributeProbes

SPLITS = ("train", "val", "test")
IMAGE_DIR = "img_align_celeba"  # = fclf.celeba.IMAGE_DIR (not imported: keeps this light)


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


# --- the real faces ------------------------------------------------------------------------


@dataclass(frozen=True)
class Gallery:
    """The real embeddings of every split, searched split by split (nothing is copied)."""

    parts: tuple[tuple[str, EmbeddingSplit], ...]

    @classmethod
    def from_splits(cls, splits: Mapping[str, EmbeddingSplit]) -> Gallery:
        return cls(tuple(splits.items()))

    @property
    def offsets(self) -> np.ndarray:
        return np.cumsum([0, *(len(s) for _, s in self.parts)])

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def row(self, index: int) -> tuple[str, EmbeddingSplit, int]:
        """(split name, split, row in it) of a gallery index."""
        part = int(np.searchsorted(self.offsets, index, side="right")) - 1
        name, split = self.parts[part]
        return name, split, int(index - self.offsets[part])

    def image_id(self, index: int) -> str:
        _, split, row = self.row(index)
        return str(split.image_ids[row])

    def identity(self, index: int) -> int | None:
        """The person's id, or None where the data has none (-1)."""
        _, split, row = self.row(index)
        value = int(split.identities[row])
        return value if value >= 0 else None

    def locate(self, image_id: str, split: str) -> int:
        """Gallery index of `image_id` in `split`; a missing id is an FclfError."""
        offsets = self.offsets
        for (name, part), offset in zip(self.parts, offsets, strict=False):
            if name == split:
                rows = np.flatnonzero(part.image_ids == image_id)
                if len(rows):
                    return int(offset + rows[0])
        elsewhere = [
            name for name, part in self.parts
            if name != split and (part.image_ids == image_id).any()
        ]
        if elsewhere:
            raise FclfError(
                f"--image-id {image_id}: not in split {split!r} but in {elsewhere[0]!r}; "
                f"pass --split {elsewhere[0]}"
            )
        names = [name for name, _ in self.parts]
        if split not in names:
            raise FclfError(f"--split {split}: no such split in the embeddings (have {names})")
        part = dict(self.parts)[split]
        example = f", e.g. {part.image_ids[0]}" if len(part) else ""
        raise FclfError(
            f"--image-id {image_id}: no such image id in any split ({len(self)} real faces"
            f"{example})"
        )

    def nearest(
        self, points: np.ndarray, exclude: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(index (S,), cosine (S,)): each point's real embedding of highest cosine,
        never `exclude` (the source itself when it comes from the data)."""
        z = np.asarray(points, np.float32)
        z = z / np.linalg.norm(z, axis=1, keepdims=True).clip(1e-12)
        best = np.full(len(z), -np.inf, np.float32)
        where = np.zeros(len(z), np.int64)
        for (_, part), offset in zip(self.parts, self.offsets, strict=False):
            if not len(part):
                continue
            sims = z @ part.embeddings.T
            if exclude is not None and offset <= exclude < offset + len(part):
                sims[:, exclude - offset] = -np.inf
            col = sims.argmax(axis=1)
            value = sims[np.arange(len(z)), col]
            better = value > best
            best[better] = value[better]
            where[better] = col[better] + offset
        return where, best


# --- the edit ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceReading:
    """The source's attributes: the probes' reading, overridden where given."""

    probabilities: np.ndarray  # (k,) probe probabilities
    attributes: np.ndarray  # (k,) int8 0/1 used as the source
    given: np.ndarray  # (k,) bool: from the user, not the probes


def read_source(
    probes: AttributeProbes, z: np.ndarray, given: Mapping[str, int] | None = None
) -> SourceReading:
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


@dataclass
class TransferPath:
    """One face's flow, read at every step (index 0 is the source)."""

    attribute_names: tuple[str, ...]
    target: np.ndarray  # (k,) int8
    trajectory: np.ndarray  # (S+1, d) float32
    probabilities: np.ndarray  # (S+1, k)
    cosine_to_source: np.ndarray  # (S+1,)
    nearest: np.ndarray  # (S+1,) gallery indices
    nearest_cosine: np.ndarray  # (S+1,)
    nearest_ids: list[str]
    nearest_identities: list[int | None]
    seconds: float = 0.0  # flow + probes + nearest-neighbour search
    gallery_size: int = 0

    @property
    def num_steps(self) -> int:
        return len(self.trajectory) - 1


EditFn = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""fclf.model_io.edit_function's contract: (z (N, d), targets (N, k)) -> (S+1, N, d)."""


def run_transfer(
    edit: EditFn, probes: AttributeProbes, gallery: Gallery, z: np.ndarray,
    target: np.ndarray, exclude: int | None = None,
) -> TransferPath:
    """Flow `z` toward `target` with `edit` and read every step (probes, nearest real)."""
    start = time.perf_counter()
    z = np.asarray(z, np.float32)
    trajectory = np.asarray(edit(z[None], np.asarray(target, np.float32)[None]))[:, 0]
    probabilities = probes.predict_proba(trajectory)
    unit = trajectory / np.linalg.norm(trajectory, axis=1, keepdims=True).clip(1e-12)
    cosine = unit @ (z / max(float(np.linalg.norm(z)), 1e-12))
    nearest, nearest_cos = gallery.nearest(trajectory, exclude)
    seconds = time.perf_counter() - start
    return TransferPath(
        attribute_names=tuple(probes.attribute_names),
        target=np.asarray(target, np.int8),
        trajectory=trajectory,
        probabilities=probabilities,
        cosine_to_source=cosine,
        nearest=nearest,
        nearest_cosine=nearest_cos,
        nearest_ids=[gallery.image_id(i) for i in nearest],
        nearest_identities=[gallery.identity(i) for i in nearest],
        seconds=seconds,
        gallery_size=len(gallery),
    )


# --- output --------------------------------------------------------------------------------


def _rounded(value: float) -> float:
    return round(float(value), 6)


def path_to_json(source: Mapping[str, Any], path: TransferPath) -> dict[str, Any]:
    """{"source": ..., "target": {attr: 0|1}, "steps": [...]} (see the module docstring)."""
    names = path.attribute_names
    steps = [
        {
            "step": k,
            "probabilities": {n: _rounded(p) for n, p in zip(names, probs, strict=True)},
            "cosine_to_source": _rounded(path.cosine_to_source[k]),
            "nearest_id": path.nearest_ids[k],
            "nearest_identity": path.nearest_identities[k],
            "nearest_cosine": _rounded(path.nearest_cosine[k]),
        }
        for k, probs in enumerate(path.probabilities)
    ]
    return {
        "source": dict(source),
        "target": {n: int(v) for n, v in zip(names, path.target, strict=True)},
        "steps": steps,
    }


def source_json(
    names: Sequence[str], reading: SourceReading, *, image_id: str | None = None,
    split: str | None = None, identity: int | None = None, labels: np.ndarray | None = None,
    image: str | None = None,
) -> dict[str, Any]:
    """The "source" block: where it came from, its attributes and who said so."""
    out: dict[str, Any] = (
        {"kind": "image_id", "image_id": image_id, "split": split, "identity": identity}
        if image is None else {"kind": "image", "path": image}
    )
    out["attributes"] = {n: int(v) for n, v in zip(names, reading.attributes, strict=True)}
    out["attributes_from"] = {
        n: "given" if g else "probe" for n, g in zip(names, reading.given, strict=True)
    }
    out["probabilities"] = {
        n: _rounded(p) for n, p in zip(names, reading.probabilities, strict=True)
    }
    if labels is not None:
        out["labels"] = {n: int(v) for n, v in zip(names, labels, strict=True)}
    return out


def describe_source(source: Mapping[str, Any]) -> str:
    if source["kind"] == "image":
        return f"image {source['path']}"
    who = f", identity {source['identity']}" if source.get("identity") is not None else ""
    return f"{source['split']} {source['image_id']}{who}"


def format_table(source: Mapping[str, Any], path: TransferPath) -> str:
    """The human-readable output: source, target, then one row per step."""
    names = path.attribute_names
    src = source["attributes"]
    reading = ", ".join(
        f"{n} {src[n]} (given)" if source["attributes_from"][n] == "given"
        else f"{n} {src[n]} (probe {source['probabilities'][n]:.2f})"
        for n in names
    )
    changes = ", ".join(
        f"{n} {src[n]}->{int(t)}" for n, t in zip(names, path.target, strict=True)
        if int(t) != src[n]
    )
    headers = [
        f"{n}->{int(t)}" if int(t) != src[n] else n
        for n, t in zip(names, path.target, strict=True)
    ]
    widths = [max(len(h), 5) for h in headers]
    id_width = max(10, *(len(i) for i in path.nearest_ids))
    lines = [
        f"source: {describe_source(source)}",
        f"  attributes: {reading}",
        f"target: {changes} (others kept)",
        "  ".join(
            ["step", *(h.rjust(w) for h, w in zip(headers, widths, strict=True)),
             "cos_src", "nearest".ljust(id_width), "identity", "cos_nn"]
        ),
    ]
    for k in range(len(path.trajectory)):
        identity = path.nearest_identities[k]
        lines.append("  ".join([
            f"{k:4d}",
            *(f"{p:{w}.3f}" for p, w in zip(path.probabilities[k], widths, strict=True)),
            f"{path.cosine_to_source[k]:7.3f}",
            path.nearest_ids[k].ljust(id_width),
            f"{'-' if identity is None else identity:>8}",
            f"{path.nearest_cosine[k]:6.3f}",
        ]))
    return "\n".join(lines)


# --- files ---------------------------------------------------------------------------------


def load_splits(folder: Path) -> dict[str, EmbeddingSplit]:
    """train (needed: the probes are fitted on it) and whichever of val/test exist; they must
    agree on attributes, dimension and encoder."""
    from fclf.embeddings_io import read_split

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
    from fclf.clip_encoder import load_clip_encoder
    from fclf.clip_preprocess import load_pixels

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


@dataclass
class TransferReport:
    """What `transfer_from_files` produced."""

    source: dict[str, Any]
    path: TransferPath
    json: dict[str, Any]
    table: str
    source_image: Path | None  # the picture of the source, when there is one
    image_dir: Path | None  # CelebA images (None: synthetic, no pixels)
    timings: dict[str, float] = field(default_factory=dict)


def transfer_from_files(
    model: Path, embeddings: Path, *, image: Path | None = None, image_id: str | None = None,
    split: str = "test", overrides: Sequence[str] = (), given: Sequence[str] = (),
    steps: int = 10, step_size: float = 0.1, clip: Path | None = None,
    celeba_root: Path | None = None, want_images: bool = False, probe_c: float = 1.0,
    warn: Callable[[str], None] = print,
) -> TransferReport:
    """Everything `fclf transfer` does before drawing; see the module docstring."""
    from fclf.model_io import edit_function, load_model

    if (image is None) == (image_id is None):
        raise FclfError("give exactly one of --image PATH or --image-id ID")
    if split not in SPLITS:
        raise FclfError(f"--split {split}: expected one of {', '.join(SPLITS)}")
    if not step_size > 0:
        raise FclfError(f"--step-size {step_size}: must be > 0")
    if not probe_c > 0:
        raise FclfError(f"--probe-c {probe_c}: must be > 0")
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    field_, model_config, record = load_model(model)
    names = tuple(record["attributes"])
    set_values = parse_assignments(overrides, names, "--set")
    if not set_values:
        raise FclfError(f"nothing to change: add --set NAME=0|1 (attributes: {', '.join(names)})")
    given_values = parse_assignments(given, names, "--source-attr")
    splits = load_splits(embeddings)
    train = splits["train"]
    check_attributes_match(names, train.attribute_names, str(model), str(embeddings))
    if record["dim"] != train.dim:
        raise DataError(
            f"{model} works on {record['dim']}-dim embeddings but {embeddings} holds "
            f"{train.dim}-dim ones"
        )
    metadata = train.metadata
    image_dir = None
    if want_images and not is_synthetic(metadata):
        image_dir = celeba_image_dir(metadata, celeba_root)
    gallery = Gallery.from_splits(splits)
    timings["load_seconds"] = time.perf_counter() - t0

    exclude = None
    if image_id is not None:
        exclude = gallery.locate(image_id, split)
        _, part, row = gallery.row(exclude)
        z = part.embeddings[row]
        source_image = image_dir / image_id if image_dir is not None else None
    else:
        image = Path(image)  # type: ignore[arg-type]
        folder = clip_folder(metadata, clip, embeddings)
        if is_synthetic(metadata):
            warn(
                f"transfer: warning: {embeddings} holds synthetic embeddings, not CLIP "
                f"embeddings made with {folder}; the edit of a real image means little here"
            )
        t1 = time.perf_counter()
        z = embed_image(image, folder, metadata, embeddings)
        timings["embed_seconds"] = time.perf_counter() - t1
        if len(z) != train.dim:
            raise DataError(
                f"--clip {folder}: makes {len(z)}-dim embeddings but the model works on "
                f"{train.dim}-dim ones"
            )
        source_image = image

    t2 = time.perf_counter()
    probes = AttributeProbes.from_split(train, c=probe_c)
    timings["probe_seconds"] = time.perf_counter() - t2
    reading = read_source(probes, z, given_values)
    target = make_target(names, reading, set_values)
    edit = edit_function(field_, model_config, steps, step_size, "cpu")
    path = run_transfer(edit, probes, gallery, z, target, exclude)
    timings["edit_seconds"] = path.seconds

    if image_id is not None:
        _, part, row = gallery.row(exclude)  # type: ignore[arg-type]
        source = source_json(
            names, reading, image_id=image_id, split=split, identity=gallery.identity(exclude),
            labels=part.attributes[row],
        )
    else:
        source = source_json(names, reading, image=str(image))
    return TransferReport(
        source=source, path=path, json=path_to_json(source, path),
        table=format_table(source, path), source_image=source_image, image_dir=image_dir,
        timings=timings,
    )
