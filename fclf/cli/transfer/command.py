"""Attribute transfer for one face: flow its embedding toward target attributes.

`fclf transfer` starts from an embedding in the data (an image id) or from a
new image embedded with the local CLIP, reads its attributes with the frozen
probes (trained on the train split, as the evaluation does) unless they are
given, flows it toward the target attributes for the horizon recorded in the model
file (its steps, step size and integrator: the flow training optimised; `--steps`
and `--step-size` override the first two), telling the flow that source (delta =
target - source: exactly the `--set` change; a given source value the probes read
the other way is reported, not silently acted on),
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
from fclf.evaluate.probes_io import READOUT_C, probes_for


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
    probe_source: str = "fitted"  # "read from FILE", or why they were fitted (probes_io)


def transfer_from_files(
    model: Path, embeddings: Path, *, image: Path | None = None, image_id: str | None = None,
    split: str = "test", overrides: Sequence[str] = (), given: Sequence[str] = (),
    steps: int | None = None, step_size: float | None = None, clip: Path | None = None,
    celeba_root: Path | None = None, want_images: bool = False, probe_c: float = READOUT_C,
    probes: Path | None = None, warn: Callable[[str], None] = print,
) -> TransferReport:
    """Everything `fclf transfer` does before drawing; see the module docstring."""
    from fclf.model.model_io import edit_function, recorded_flow

    if (image is None) == (image_id is None):
        raise FclfError("give exactly one of --image PATH or --image-id ID")
    if image is not None:
        check_image_exists(Path(image))
    if split not in SPLITS:
        raise FclfError(f"--split {split}: expected one of {', '.join(SPLITS)}")
    if not probe_c > 0:
        raise FclfError(f"--probe-c {probe_c}: must be > 0")
    check_inputs_exist(Path(model), Path(embeddings))
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    field_, model_config, record = read_model(Path(model))
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
    probes_path = probes
    probes, probe_source = probes_for(train, probe_c, probes_path)
    timings["probe_seconds"] = time.perf_counter() - t2
    reading = read_source(probes, z, given_values)
    target = make_target(names, reading, set_values)
    edit = edit_function(field_, model_config, steps, step_size, "cpu",
                         integrator=flow.integrator)
    path = run_transfer(edit, probes, gallery, z, reading.attributes, target, exclude)
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
        timings=timings, reach=reach, probe_source=probe_source,
    )


def check_image_exists(image: Path) -> None:
    """--image must be a file: checked before anything is loaded (CLIP included)."""
    if image.is_dir():
        raise FclfError(f"{image}: a folder, not an image file")
    if not image.is_file():
        raise FclfError(f"{image}: image not found")


MODEL_HINT = "--model takes the models/fclf.pt that `dvc repro train` writes"


def read_model(model: Path):
    """`fclf.model.model_io.load_model`, with a one-line FclfError for any file that is not
    an fclf model file (a text file, another torch file, a checkpoint) instead of torch's
    multi-paragraph messages or a traceback."""
    from fclf.model.model_io import load_model

    with open(model, "rb") as f:
        head = f.read(4096)
    if not head.startswith(b"PK\x03\x04"):  # torch.save writes a zip archive
        what = "empty" if not head else "a text file" if _is_text(head) else (
            "not a torch archive")
        raise FclfError(f"{model}: not an fclf model file ({what}); {MODEL_HINT}")
    try:
        return load_model(model)
    except FclfError as exc:
        message = str(exc).replace("not a readable model file (", "not an fclf model file (")
        if "\n" not in message and len(message) <= 300:  # e.g. load_model's (the format)
            hint = "" if "retrain" in message else f"; {MODEL_HINT}"
            raise FclfError(message + hint) from None
        if "Weights only load failed" in message:
            why = "a torch file holding objects other than tensors and plain values"
        else:
            why = message.splitlines()[0][:200]
        raise FclfError(f"{model}: not an fclf model file ({why}); {MODEL_HINT}") from None
    except (AttributeError, KeyError, TypeError, ValueError, RuntimeError) as exc:
        what = ("a torch file without the model record" if isinstance(
            exc, (AttributeError, KeyError, TypeError)) else "its weights do not load")
        why = f"{what}: {type(exc).__name__}: {exc}".splitlines()[0][:200]
        raise FclfError(f"{model}: not an fclf model file ({why}); {MODEL_HINT}") from None


def _is_text(head: bytes) -> bool:
    if b"\0" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start >= len(head) - 4  # a character cut at the end of the first block
    return True


def check_inputs_exist(model: Path, embeddings: Path) -> None:
    """Missing pipeline outputs are FclfErrors that say which `dvc repro` makes them."""
    if model.is_dir():
        raise FclfError(f"{model}: a folder, not a model file; {MODEL_HINT}")
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
