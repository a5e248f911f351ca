"""Attribute transfer for one face: flow its embedding toward target attributes.

`fclf transfer` starts from an embedding in the data (an image id) or from a
new image embedded with the local CLIP, reads its attributes with the frozen
probes (trained on the train split, as the evaluation does) unless they are
given, flows it toward the target attributes for the horizon recorded in the model
file (its steps, step size and integrator: the flow training optimised; `--steps`
and `--step-size` override the first two),
and follows the path with the probes and with its nearest real face: for
every step, the real embedding (of any split) with the highest cosine. There
is no decoder; the nearest real face stands in for the picture of each step.
The pure parts (arrays and objects in, arrays and dicts out, vectorised: one
face takes milliseconds) live in the sibling modules; `transfer_from_files`
here reads the model, embeddings, CLIP folder and images and checks that they
belong together. Nothing here reads params.yaml.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fclf.cli.transfer.edit import REACH_FACTOR, TransferPath, run_transfer, target_reach
from fclf.cli.transfer.inputs import (
    SPLITS,
    celeba_image_dir,
    check_attributes_match,
    clip_folder,
    embed_image,
    is_synthetic,
    load_splits,
    make_target,
    parse_assignments,
    read_source,
)
from fclf.cli.transfer.nearest import Gallery
from fclf.cli.transfer.output import format_table, path_to_json, source_json
from fclf.errors import DataError, FclfError
from fclf.evaluate.probes import AttributeProbes


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
    reach: dict[str, Any] = field(default_factory=dict)  # see edit.target_reach


def transfer_from_files(
    model: Path, embeddings: Path, *, image: Path | None = None, image_id: str | None = None,
    split: str = "test", overrides: Sequence[str] = (), given: Sequence[str] = (),
    steps: int | None = None, step_size: float | None = None, clip: Path | None = None,
    celeba_root: Path | None = None, want_images: bool = False, probe_c: float = 1.0,
    warn: Callable[[str], None] = print,
) -> TransferReport:
    """Everything `fclf transfer` does before drawing; see the module docstring."""
    from fclf.model.model_io import edit_function, load_model, recorded_flow

    if (image is None) == (image_id is None):
        raise FclfError("give exactly one of --image PATH or --image-id ID")
    if split not in SPLITS:
        raise FclfError(f"--split {split}: expected one of {', '.join(SPLITS)}")
    if not probe_c > 0:
        raise FclfError(f"--probe-c {probe_c}: must be > 0")
    check_inputs_exist(Path(model), Path(embeddings))
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    field_, model_config, record = load_model(model)
    flow = recorded_flow(record)
    steps = flow.num_steps if steps is None else steps
    step_size = flow.step_size if step_size is None else step_size
    if not step_size > 0:
        raise FclfError(f"--step-size {step_size}: must be > 0")
    if steps < 1:
        raise FclfError(f"--steps {steps}: must be >= 1")
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
    edit = edit_function(field_, model_config, steps, step_size, "cpu",
                         integrator=flow.integrator)
    path = run_transfer(edit, probes, gallery, z, target, exclude)
    timings["edit_seconds"] = path.seconds
    longer = edit_function(field_, model_config, steps * REACH_FACTOR, step_size, "cpu",
                           integrator=flow.integrator)
    reach = target_reach(path, reading.attributes, longer, probes, z, step_size)

    if image_id is not None:
        _, part, row = gallery.row(exclude)  # type: ignore[arg-type]
        source = source_json(
            names, reading, image_id=image_id, split=split, identity=gallery.identity(exclude),
            labels=part.attributes[row],
        )
    else:
        source = source_json(names, reading, image=str(image))
    return TransferReport(
        source=source, path=path, json={**path_to_json(source, path), "reach": reach},
        table=format_table(source, path), source_image=source_image, image_dir=image_dir,
        timings=timings, reach=reach,
    )


def check_inputs_exist(model: Path, embeddings: Path) -> None:
    """Missing pipeline outputs are FclfErrors that say which `dvc repro` makes them."""
    if not model.is_file():
        raise FclfError(
            f"{model}: model file not found; run `dvc repro` (or `dvc repro train`) first, "
            "or pass --model"
        )
    if not (embeddings / "train.parquet").is_file():
        what = "embeddings folder not found" if not embeddings.is_dir() else (
            "no train.parquet in the embeddings folder")
        raise FclfError(
            f"{embeddings}: {what}; run `dvc repro embed` (or `dvc repro`) first, "
            "or pass --embeddings"
        )
