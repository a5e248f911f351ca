"""The picture of one attribute transfer (`fclf transfer --out`: PNG, JPEG, PDF or SVG).

With CelebA: a strip of faces, the source first, then the nearest real face
of the flowed point at each step; consecutive steps with the same nearest face
share one panel (`strip_panels`). Captions give the probes' read-out of the
flowed point (not of the shown face) at the panel's last step. With synthetic
embeddings there are no pixels: `readout_figure` plots each attribute's
probability against the step instead, with the target marked.

Functions take arrays and a `TransferPath`; nothing here reads embeddings.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fclf.cli.transfer.edit import TransferPath
from fclf.cli.transfer.output import describe_source
from fclf.errors import DataError, FclfError
from fclf.plotting.style import new_figure, save_png

PANEL_WIDTH = 1.75  # inches per face
NAME_WIDTH = 12  # attribute names are cut to this in captions
EDITED = "*"
FACE_SIZE = (178, 218)  # (width, height) of an aligned CelebA face


@dataclass(frozen=True)
class Panel:
    """Consecutive steps first_step..last_step whose nearest real face is `nearest`."""

    first_step: int
    last_step: int
    nearest: Any

    @property
    def label(self) -> str:
        if self.first_step == self.last_step:
            return f"step {self.first_step}"
        return f"steps {self.first_step}-{self.last_step}"


def strip_panels(nearest: Sequence[Any]) -> list[Panel]:
    """One panel per run of equal consecutive values (step k has `nearest[k]`)."""
    panels: list[Panel] = []
    for step, value in enumerate(nearest):
        if panels and panels[-1].nearest == value:
            panels[-1] = Panel(panels[-1].first_step, step, value)
        else:
            panels.append(Panel(step, step, value))
    return panels


def load_face(path: Path) -> np.ndarray:
    """(H, W, 3) uint8 RGB pixels; a missing or unreadable file is a DataError."""
    from fclf.data.clip_preprocess import decode_image

    try:
        return np.asarray(decode_image(Path(path)))
    except FileNotFoundError:
        raise DataError(f"{path}: image not found (is --celeba-root right?)") from None
    except OSError as exc:
        raise DataError(f"{path}: not a readable image ({exc})") from None


def fit_to_panel(pixels: np.ndarray, size: tuple[int, int] = FACE_SIZE) -> np.ndarray:
    """Scale (H, W, 3) pixels to fit `size` (width, height), padded white: every panel then
    has the same shape (aligned CelebA faces already are 178x218)."""
    from PIL import Image

    image = Image.fromarray(np.asarray(pixels, np.uint8))
    if image.size == size:
        return np.asarray(image)
    scale = min(size[0] / image.width, size[1] / image.height)
    inner = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    canvas = Image.new("RGB", size, (255, 255, 255))
    offset = ((size[0] - inner[0]) // 2, (size[1] - inner[1]) // 2)
    canvas.paste(image.resize(inner, Image.Resampling.BICUBIC), offset)
    return np.asarray(canvas)


def _changes(path: TransferPath, source_attrs: Mapping[str, int]) -> str:
    return ", ".join(
        f"{n} {source_attrs[n]}->{int(t)}"
        for n, t in zip(path.attribute_names, path.target, strict=True)
        if int(t) != source_attrs[n]
    )


def readout_lines(
    names: Sequence[str], probabilities: np.ndarray, edited: Sequence[bool]
) -> list[str]:
    """One `name  p` line per attribute, `*` marking the edited ones."""
    return [
        f"{n[:NAME_WIDTH]:<{NAME_WIDTH}}{EDITED if e else ' '}{p:5.2f}"
        for n, p, e in zip(names, probabilities, edited, strict=True)
    ]


def face_strip_figure(
    source_image: np.ndarray, source_caption: str, images: Sequence[np.ndarray],
    titles: Sequence[str], captions: Sequence[str], title: str,
):
    """The source and one panel per image, side by side, captions below each."""
    n = 1 + len(images)
    lines = max(c.count("\n") + 1 for c in [source_caption, *captions])
    face_height = PANEL_WIDTH * FACE_SIZE[1] / FACE_SIZE[0]
    height = face_height + 0.8 + 0.13 * lines  # + titles and captions
    fig, axes = new_figure(PANEL_WIDTH * n, height, ncols=n, squeeze=False)
    axes = axes[0]
    pictures = [source_image, *images]
    for i, (ax, pixels, head, caption) in enumerate(zip(
        axes, pictures, ["source", *titles], [source_caption, *captions], strict=True
    )):
        ax.imshow(fit_to_panel(pixels))
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_visible(i == 0)
            spine.set_linewidth(2.5)
            spine.set_color("#1f77b4")
        ax.set_title(head, fontsize=9, fontweight="bold" if i == 0 else "normal")
        ax.set_xlabel(caption, fontsize=6.5, family="monospace", loc="left")
    fig.suptitle(textwrap.fill(title, width=int(PANEL_WIDTH * n * 11)), fontsize=9)
    return fig


def transfer_strip(
    source: Mapping[str, Any], path: TransferPath, source_image: np.ndarray,
    face: Callable[[str], np.ndarray],
):
    """The face strip of a transfer: `face(image_id)` gives a real face's pixels."""
    names = path.attribute_names
    src = source["attributes"]
    edited = [int(t) != src[n] for n, t in zip(names, path.target, strict=True)]
    panels = strip_panels(list(path.nearest))
    images, titles, captions = [], [], []
    for panel in panels:
        k = panel.last_step
        identity = path.nearest_identities[k]
        who = "" if identity is None else f" id {identity}"
        images.append(face(path.nearest_ids[k]))
        titles.append(panel.label)
        captions.append("\n".join([
            f"{path.nearest_ids[k]}{who}",
            f"cos nn {path.nearest_cosine[k]:.2f} src {path.cosine_to_source[k]:.2f}",
            *readout_lines(names, path.probabilities[k], edited),
        ]))
    label = source.get("image_id") or Path(source.get("path", "")).name
    source_caption = "\n".join([
        str(label), "probe read-out", *readout_lines(names, path.probabilities[0], edited)
    ])
    title = (
        f"{label}: {_changes(path, src)}. The nearest real face at each flow step; numbers are "
        f"the probes' read-out of the flowed point ({EDITED} = edited attribute)"
    )
    return face_strip_figure(source_image, source_caption, images, titles, captions, title)


def unreached(path: TransferPath, source_attributes: Mapping[str, int]) -> list[str]:
    """Edited attributes whose last read-out is on the wrong side of 0.5."""
    out = []
    for j, name in enumerate(path.attribute_names):
        target = int(path.target[j])
        if target == source_attributes[name]:
            continue
        last = float(path.probabilities[-1, j])
        if (last >= 0.5) != (target == 1):
            out.append(name)
    return out


def readout_figure(source: Mapping[str, Any], path: TransferPath):
    """Probe probability of each attribute vs step (target marked), and the cosines."""
    import matplotlib.pyplot as plt

    names = path.attribute_names
    src = source["attributes"]
    steps = np.arange(path.num_steps + 1)
    fig, (top, bottom) = new_figure(
        7.5, 5.0, nrows=2, sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    colours = plt.get_cmap("tab10")
    failed = unreached(path, src)
    for j, name in enumerate(names):
        colour = colours(j % 10)
        target = int(path.target[j])
        edited = target != src[name]
        label = f"{name} {src[name]}->{target}" if edited else f"{name} (kept {target})"
        if name in failed:
            label += " NOT REACHED"
            top.scatter([steps[-1]], [path.probabilities[-1, j]], marker="X", s=120,
                        color="#d62728", zorder=4)
        top.plot(steps, path.probabilities[:, j], marker="o", ms=3, color=colour, label=label,
                 lw=2.2 if edited else 1.2)
        top.scatter([steps[-1] + 0.3 + 0.15 * j], [target], marker="*" if edited else "_",
                    s=140, color=colour, zorder=3, clip_on=False)
    top.axhline(0.5, color="#888888", lw=0.8, ls=":")
    top.set_ylim(-0.04, 1.04)
    top.set_ylabel("probe probability")
    top.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), title="markers right: target")
    bottom.plot(steps, path.cosine_to_source, color="black", label="to source")
    bottom.plot(steps, path.nearest_cosine, color="#888888", ls="--", label="to nearest real")
    bottom.set_ylabel("cosine")
    bottom.set_xlabel("flow step")
    bottom.legend(loc="center left", bbox_to_anchor=(1.01, 0.5))
    verdict = (f"target NOT reached: {', '.join(failed)} (red X)" if failed
               else "synthetic embeddings have no images: probe read-outs along the flow")
    top.set_title(f"{describe_source(source)}: {_changes(path, src)}\n{verdict}",
                  color="#d62728" if failed else "black")
    return fig


OUT_FORMATS = {".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg", ".pdf": "pdf", ".svg": "svg"}
"""`--out` suffix -> the format written (the suffix decides; anything else is refused)."""


def out_format(path: str | Path) -> str:
    """The format `--out PATH` is written in, from its suffix; an FclfError for others."""
    suffix = Path(path).suffix.lower()
    if suffix not in OUT_FORMATS:
        said = f"suffix {suffix!r}" if suffix else "no suffix"
        raise FclfError(
            f"--out {path}: {said}; the figure is written as .png, .jpg/.jpeg, .pdf or .svg, "
            "chosen by the suffix"
        )
    return OUT_FORMATS[suffix]


def save_figure(fig, path: str | Path, dpi: int = 110) -> None:
    """Write the figure atomically in the format its suffix names (and free the figure)."""
    import matplotlib.pyplot as plt

    from fclf.atomic import atomic_path

    fmt = out_format(path)
    if fmt == "png":
        save_png(fig, path, dpi)
        return
    options = {  # no dates or versions in the file: the same figure gives the same bytes
        "jpeg": {"pil_kwargs": {"quality": 92}},  # matplotlib flattens RGBA onto white
        "pdf": {"metadata": {"CreationDate": None, "Producer": None, "Creator": None}},
        "svg": {"metadata": {"Date": None, "Creator": None}},
    }[fmt]
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=fmt, dpi=dpi, **options)
    finally:
        plt.close(fig)


def write_transfer_figure(report, out: str | Path, dpi: int = 110) -> bool:
    """Write `report`'s figure (a `fclf.cli.transfer.command.TransferReport`) in the format
    `out`'s suffix names (`OUT_FORMATS`): the face strip when the embeddings have CelebA images,
    else the read-out plot. True if faces were drawn."""
    if report.image_dir is None:
        save_figure(readout_figure(report.source, report.path), out, dpi)
        return False
    image_dir = report.image_dir
    fig = transfer_strip(
        report.source, report.path, load_face(report.source_image),
        lambda image_id: load_face(image_dir / image_id),
    )
    save_figure(fig, out, dpi)
    return True
