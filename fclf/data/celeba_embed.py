"""Encode a local CelebA release with a local CLIP model into the embeddings files.

Encoding all ~200k images takes hours on a CPU, so the work is resumable: the
images (in list_attr_celeba.txt order) are cut into chunks of
`embed.chunk_size`, and each finished chunk is written atomically to
`work_dir/<run key>/chunk_NNNNNN.npz`. `work_dir` lies outside the DVC output
folder, which DVC deletes before re-running the stage. The run key covers the
model (hash of its config and weights), the preprocessing, the precision and
the chunk size; each chunk also records the names and file sizes of its
images, so a changed image list or a replaced image recomputes only the chunks
it touches. An interrupted run, re-run, continues where it stopped and writes
the same files as an uninterrupted one. Changing data.attributes reuses every
chunk (attributes are not part of the embeddings).

Images missing on disk or undecodable are never replaced by a stand-in: with
`embed.on_bad_image: error` the stage stops (missing files are found before
any encoding starts), with `skip` they are left out and counted in the stage
output and in each file's metadata (`skipped_images`).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
from tqdm import tqdm

from fclf.atomic import atomic_path, write_json
from fclf.config import EmbedConfig
from fclf.data.celeba import SPLIT_NAMES, CelebaIndex, read_celeba
from fclf.data.clip_encoder import ClipEncoder, check_model_dir, load_clip_encoder
from fclf.data.clip_preprocess import load_pixels, map_batches
from fclf.data.embeddings_io import EmbeddingSplit, write_split
from fclf.errors import DataError
from fclf.progress import progress

CACHE_FORMAT = 1
SHOW_BAD = 5  # offenders named in messages
MAX_NAMES_IN_METADATA = 100


@dataclass
class Chunk:
    """Encoder output for one run of consecutive images."""

    ok: np.ndarray  # (n,) bool: the image was decoded and encoded
    embeddings: np.ndarray  # (ok.sum(), dim) float32
    reasons: np.ndarray  # (n,) str: why an image was not encoded ("" if it was)


def embed_celeba(
    celeba_root: Path,
    attributes: list[str],
    embed: EmbedConfig,
    out_paths: dict[str, Path],
    work_dir: Path,
    *,
    stop_after_chunks: int | None = None,
) -> None:
    """Write one embeddings file per split in `out_paths` (keys: train/val/test).

    `stop_after_chunks` stops (without writing outputs) once that many chunks
    have been newly encoded: it stands in for an interruption in tests.
    """
    check_model_dir(embed.model_path)
    index = read_celeba(celeba_root, attributes)
    unknown = sorted(set(out_paths) - set(SPLIT_NAMES))
    if unknown:
        raise ValueError(f"unknown split(s) {unknown}")
    _report_index(index)
    on_disk = _files_in(index)
    missing = [i for i, name in enumerate(index.image_names) if name not in on_disk]
    if missing and embed.on_bad_image == "error":
        raise DataError(_bad_images_message(index, missing, "missing from"))

    encoder = load_clip_encoder(embed.model_path, embed.device, embed.precision)
    print(
        f"embed: encoder {encoder.identity['path']} ({encoder.identity['model_type']}, sha256 "
        f"{encoder.identity['sha256'][:16]}), dim {encoder.dim}, {encoder.device}, "
        f"{encoder.precision}, batch {embed.batch_size}, workers {embed.workers}"
    )
    run_key = _run_key(encoder, embed)
    run_dir = Path(work_dir) / run_key[:16]
    chunks = _encode_chunks(index, encoder, embed, run_key, run_dir, stop_after_chunks)
    if chunks is None:
        return
    ok = np.concatenate([c.ok for c in chunks])
    reasons = np.concatenate([c.reasons for c in chunks])
    bad = np.flatnonzero(~ok)
    if len(bad) and embed.on_bad_image == "error":  # only possible with chunks cached by a skip run
        raise DataError(_bad_images_message(index, bad, "could not be read from"))
    if len(bad):
        n_missing = int(sum(reasons[i] == "missing" for i in bad))
        print(
            f"embed: skipped {len(bad)} image(s) ({n_missing} missing, "
            f"{len(bad) - n_missing} undecodable): "
            + ", ".join(index.image_names[i] for i in bad[:SHOW_BAD])
            + (", ..." if len(bad) > SHOW_BAD else "")
        )
    for split in out_paths:
        if not (index.split_mask(split) & ok).any():
            raise DataError(
                f"{index.root / 'list_eval_partition.txt'}: no usable images in split {split!r} "
                f"({int(index.split_mask(split).sum())} skipped)"
            )
    embeddings = np.concatenate([c.embeddings for c in chunks])
    for split, path in out_paths.items():
        _write(path, split, index, ok, embeddings, encoder)


def _report_index(index: CelebaIndex) -> None:
    counts = ", ".join(
        f"{s} {int(index.split_mask(s).sum())}" for s in SPLIT_NAMES
    )
    identities = "yes" if index.has_identities else "no (identity_CelebA.txt absent: -1)"
    print(f"embed: {len(index)} images in {index.root} ({counts}); identities: {identities}")


def _files_in(index: CelebaIndex) -> set[str]:
    folder = index.image_dir
    if not folder.is_dir():
        raise DataError(f"{folder}: image folder not found (expected part of the CelebA release)")
    return {entry.name for entry in os.scandir(folder) if entry.is_file()}


def _bad_images_message(index: CelebaIndex, bad: list[int] | np.ndarray, what: str) -> str:
    shown = ", ".join(
        f"{index.image_names[i]} (list_attr_celeba.txt:{index.attr_lines[i]})"
        for i in bad[:SHOW_BAD]
    )
    more = f" and {len(bad) - SHOW_BAD} more" if len(bad) > SHOW_BAD else ""
    return (
        f"{index.image_dir}: {len(bad)} image(s) {what} the folder: {shown}{more}; restore them or "
        "set embed.on_bad_image: skip to leave them out"
    )


def _run_key(encoder: ClipEncoder, embed: EmbedConfig) -> str:
    spec = {
        "format": CACHE_FORMAT,
        "model_sha256": encoder.identity["sha256"],
        "model_type": encoder.identity["model_type"],
        "preprocess": encoder.preprocess.as_dict(),
        "precision": embed.precision,
        "chunk_size": embed.chunk_size,
    }
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()


def _chunk_key(run_key: str, paths: list[Path]) -> str:
    digest = hashlib.sha256(run_key.encode())
    for path in paths:
        try:
            size = path.stat().st_size
        except OSError:
            size = -1
        digest.update(f"{path.name}\0{size}\n".encode())
    return digest.hexdigest()


def _load_chunk(path: Path, key: str, n: int) -> Chunk | None:
    """A cached chunk, or None if absent, stale or unreadable (then it is recomputed)."""
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            if str(data["key"]) != key or len(data["ok"]) != n:
                return None
            chunk = Chunk(data["ok"], data["embeddings"], data["reasons"])
    except (OSError, ValueError, KeyError):
        return None
    return chunk if len(chunk.embeddings) == int(chunk.ok.sum()) else None


def _save_chunk(path: Path, key: str, chunk: Chunk) -> None:
    with atomic_path(path) as tmp, tmp.open("wb") as f:
        np.savez(f, key=np.array(key), ok=chunk.ok, embeddings=chunk.embeddings,
                 reasons=chunk.reasons)


def _encode_chunks(
    index: CelebaIndex, encoder: ClipEncoder, embed: EmbedConfig, run_key: str, run_dir: Path,
    stop_after: int | None,
) -> list[Chunk] | None:
    paths = [index.image_dir / name for name in index.image_names]
    starts = list(range(0, len(paths), embed.chunk_size))
    keys = [_chunk_key(run_key, paths[s : s + embed.chunk_size]) for s in starts]
    files = [run_dir / f"chunk_{i:06d}.npz" for i in range(len(starts))]
    chunks = [
        _load_chunk(f, k, len(paths[s : s + embed.chunk_size]))
        for f, k, s in zip(files, keys, starts, strict=True)
    ]
    done = sum(len(c.ok) for c in chunks if c is not None)
    write_json(run_dir / "manifest.json", {
        "format": CACHE_FORMAT, "encoder": encoder.identity, "precision": embed.precision,
        "preprocess": encoder.preprocess.as_dict(), "chunk_size": embed.chunk_size,
        "images": len(paths), "chunks": len(starts),
    })
    cached = sum(c is not None for c in chunks)
    print(f"embed: cache {run_dir}: {cached} of {len(starts)} chunk(s) already encoded")
    new = 0
    with progress(total=len(paths), initial=done, unit="img", desc="embed", smoothing=0.05) as bar:
        for i, start in enumerate(starts):
            if chunks[i] is not None:
                continue
            if stop_after is not None and new >= stop_after:
                bar.close()
                print(f"embed: stopped after {new} new chunk(s); re-run to continue")
                return None
            chunk = _encode(paths[start : start + embed.chunk_size], encoder, embed, bar)
            _save_chunk(files[i], keys[i], chunk)
            chunks[i] = chunk
            new += 1
            undecodable = [
                start + j for j in np.flatnonzero(~chunk.ok) if chunk.reasons[j] != "missing"
            ]
            if undecodable and embed.on_bad_image == "error":
                bar.close()
                raise DataError(
                    _bad_images_message(index, undecodable, "could not be decoded in")
                    + f" (found while encoding images {start + 1}-{start + len(chunk.ok)} of "
                    f"{len(paths)}; first reason: {chunk.reasons[undecodable[0] - start]})"
                )
    return chunks  # type: ignore[return-value]


def _encode(paths: list[Path], encoder: ClipEncoder, embed: EmbedConfig, bar: tqdm) -> Chunk:
    ok, reasons, parts = [], [], []
    load = partial(load_pixels, preprocess=encoder.preprocess)
    for batch in map_batches(load, paths, embed.batch_size, embed.workers):
        pixels = [p for p, _ in batch if p is not None]
        if pixels:
            parts.append(encoder.encode(np.stack(pixels)))
        ok.extend(p is not None for p, _ in batch)
        reasons.extend(r or "" for _, r in batch)
        bar.update(len(batch))
    embeddings = np.concatenate(parts) if parts else np.zeros((0, encoder.dim), np.float32)
    return Chunk(np.array(ok, bool), embeddings.astype(np.float32), np.array(reasons, str))


def _write(
    path: Path, split: str, index: CelebaIndex, ok: np.ndarray, embeddings: np.ndarray,
    encoder: ClipEncoder,
) -> None:
    in_split = index.split_mask(split)
    rows = in_split & ok
    skipped = [index.image_names[i] for i in np.flatnonzero(in_split & ~ok)]
    identity = encoder.identity
    metadata = {
        "source": "celeba",
        "celeba_root": str(index.root),
        "encoder": f"{identity['name']}@sha256:{identity['sha256'][:16]}",
        "encoder_info": {
            **identity, "precision": encoder.precision,
            "preprocess": encoder.preprocess.as_dict(),
        },
        "split": split,
        "has_identities": index.has_identities,
        "skipped_images": len(skipped),
        "skipped_image_names": skipped[:MAX_NAMES_IN_METADATA],
    }
    names = np.array(index.image_names, dtype=object)
    write_split(path, EmbeddingSplit(
        image_ids=names[rows],
        identities=index.identities[rows],
        attributes=index.attributes[rows],
        embeddings=embeddings[in_split[ok]],
        attribute_names=index.attribute_names,
        metadata=metadata,
    ))
    print(
        f"embed: wrote {path} ({int(rows.sum())} rows, celeba, {len(skipped)} skipped)"
    )
