"""The celeba path of the embed stage, on a miniature CelebA and tiny random CLIPs."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from mini_celeba import MiniCeleba, face_like_image, save_tiny_clip, write_mini_celeba
from PIL import Image

from fclf.attributes import CELEBA_ATTRIBUTES
from fclf.config import EmbedConfig
from fclf.data.celeba_embed import embed_celeba
from fclf.data.clip_encoder import checkpoint_hash, load_clip_encoder
from fclf.data.embeddings_io import read_split
from fclf.errors import DataError

transformers = pytest.importorskip("transformers")

REPO = Path(__file__).resolve().parents[1]
SPLITS = ("train", "val", "test")
ATTRS = ["Smiling", "Male", "Young"]
N = 30  # 18 train, 6 val, 6 test; chunks of 8 -> 4 chunks



def stage(params: Path, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    """Run stages/embed.py as DVC would: relative outputs land under `cwd`."""
    return subprocess.run(
        [sys.executable, str(REPO / "stages" / "embed.py"), "--params", str(params)],
        cwd=cwd, capture_output=True, text=True, timeout=600,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "OMP_NUM_THREADS": "1", **env},
    )


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("clip")
    return {kind: save_tiny_clip(root / kind, kind) for kind in ("full", "vision")}


@pytest.fixture
def mini(tmp_path: Path) -> MiniCeleba:
    return write_mini_celeba(tmp_path / "celeba", n=N)


def config(model: Path, **overrides) -> EmbedConfig:
    values = {"model_path": str(model), "batch_size": 4, "chunk_size": 8, "workers": 0}
    return EmbedConfig(**{**values, **overrides})


def run(
    mini: MiniCeleba, embed: EmbedConfig, tag: str = "a", attributes: list[str] = ATTRS, **kw
) -> dict[str, Path]:
    """Run embed_celeba with outputs in <root>/../out-<tag> and the cache in cache-<tag>."""
    base = mini.root.parent
    outs = {s: base / f"out-{tag}" / f"{s}.parquet" for s in SPLITS}
    embed_celeba(mini.root, attributes, embed, outs, base / f"cache-{tag}", **kw)
    return outs


def reference_embeddings(model: Path, images: list[Path]) -> np.ndarray:
    """Normalised image_embeds straight from transformers."""
    import torch

    processor = getattr(
        transformers, "CLIPImageProcessorPil", transformers.CLIPImageProcessor
    ).from_pretrained(model)
    pixels = processor(images=[Image.open(p) for p in images], return_tensors="pt")
    vision = transformers.CLIPVisionModelWithProjection.from_pretrained(model)
    if json.loads((model / "config.json").read_text())["model_type"] == "clip":
        clip = transformers.CLIPModel.from_pretrained(model)
        vision.vision_model, vision.visual_projection = clip.vision_model, clip.visual_projection
    with torch.no_grad():
        out = vision(pixel_values=pixels["pixel_values"]).image_embeds.numpy()
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def chunk_files(mini: MiniCeleba, tag: str = "a") -> list[str]:
    return sorted(p.name for p in (mini.root.parent / f"cache-{tag}").glob("*/chunk_*.npz"))


def test_stage_script_encodes_mini_celeba(tmp_path: Path, mini: MiniCeleba, clips) -> None:
    params = tmp_path / "params.yaml"
    params.write_text(
        f"data:\n  source: celeba\n  celeba_root: {mini.root}\n  attributes: {ATTRS}\n"
        f"embed:\n  model_path: {clips['full']}\n  batch_size: 4\n  chunk_size: 8\n"
        "  workers: 2\n"
    )
    proc = stage(params, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "0 of 4 chunk(s) already encoded" in proc.stdout
    assert "img/s" in proc.stderr  # the progress bar
    assert len(list((tmp_path / "data" / "embed_cache").glob("*/chunk_*.npz"))) == 4

    columns = [CELEBA_ATTRIBUTES.index(a) for a in ATTRS]
    expected_sha = checkpoint_hash(clips["full"])
    for code, split in enumerate(SPLITS):
        path = tmp_path / "data" / "embeddings" / f"{split}.parquet"
        data = read_split(path, ATTRS)
        rows = np.flatnonzero(mini.splits == code)
        if split == "train":  # the judge split is carved out of train by identity
            judge = read_split(tmp_path / "data" / "embeddings" / "judge.parquet", ATTRS)
            assert len(judge) > 0 and not set(judge.identities) & set(data.identities)
            assert len(data) + len(judge) == 18
            rows = np.array([i for i in rows if mini.names[i] in set(data.image_ids)])
        assert len(data) == len(rows)
        assert len(rows) == 6 or split == "train"
        assert list(data.image_ids) == [mini.names[i] for i in rows]
        np.testing.assert_array_equal(data.identities, mini.identities[rows])
        np.testing.assert_array_equal(data.attributes, mini.values[rows][:, columns] == 1)
        np.testing.assert_allclose(np.linalg.norm(data.embeddings, axis=1), 1.0, atol=1e-5)
        assert data.dim == 16
        meta = data.metadata
        assert meta["source"] == "celeba" and meta["split"] == split
        assert meta["encoder"] == f"full@sha256:{expected_sha[:16]}"
        assert meta["encoder_info"]["sha256"] == expected_sha
        assert meta["encoder_info"]["precision"] == "fp32"
        assert meta["skipped_images"] == 0 and meta["has_identities"] is True
        if split != "train":  # train is rewritten without the judge's people
            assert f"wrote data/embeddings/{split}.parquet ({len(rows)} rows" in proc.stdout
    train = read_split(tmp_path / "data" / "embeddings" / "train.parquet")
    reference = reference_embeddings(clips["full"], [mini.image(n) for n in mini.names[:6]])
    np.testing.assert_allclose(train.embeddings[:6], reference, atol=1e-5)
    assert np.abs(train.embeddings[0] @ train.embeddings[1]) < 0.9999  # images differ


@pytest.mark.parametrize(
    ("model_path", "break_data", "words"),
    [
        ("openai/clip-vit-base-patch32", None, ["no such local folder", "huggingface-cli"]),
        ("{clip}", "000007.jpg", ["1 image(s) missing", "000007.jpg (list_attr_celeba.txt:9)",
                                  "on_bad_image: skip"]),
    ],
)
def test_stage_script_fails_clearly(
    tmp_path: Path, mini: MiniCeleba, clips, model_path: str, break_data, words
) -> None:
    if break_data:
        mini.image(break_data).unlink()
    params = tmp_path / "params.yaml"
    params.write_text(
        f"data:\n  source: celeba\n  celeba_root: {mini.root}\n"
        f"embed:\n  model_path: {model_path.format(clip=clips['full'])}\n"
    )
    proc = stage(params, tmp_path, HF_HUB_OFFLINE="0")
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr
    for w in words:
        assert w in proc.stderr
    assert not (tmp_path / "data").exists()  # failed before any encoding or output


@pytest.mark.parametrize("kind", ["full", "vision"])
def test_both_checkpoint_kinds_match_transformers(mini: MiniCeleba, clips, kind: str) -> None:
    mini.identity_file.unlink()
    outs = run(mini, config(clips[kind]))
    test = read_split(outs["test"], ATTRS)
    rows = np.flatnonzero(mini.splits == 2)
    reference = reference_embeddings(clips[kind], [mini.image(mini.names[i]) for i in rows])
    np.testing.assert_allclose(test.embeddings, reference, atol=1e-5)
    assert (test.identities == -1).all() and test.metadata["has_identities"] is False
    assert test.metadata["encoder_info"]["model_type"] == {
        "full": "clip", "vision": "clip_vision_model"}[kind]


def test_interrupted_run_resumes_to_identical_files(mini: MiniCeleba, clips, capsys) -> None:
    whole = run(mini, config(clips["full"]), tag="whole")
    outs = run(mini, config(clips["full"]), tag="cut", stop_after_chunks=2)
    assert not any(p.exists() for p in outs.values())
    assert chunk_files(mini, "cut") == ["chunk_000000.npz", "chunk_000001.npz"]
    capsys.readouterr()
    outs = run(mini, config(clips["full"]), tag="cut")
    assert "2 of 4 chunk(s) already encoded" in capsys.readouterr().out
    for split in SPLITS:
        assert outs[split].read_bytes() == whole[split].read_bytes()

    # A lost chunk is recomputed; DVC deletes outputs before re-running a stage.
    next((mini.root.parent / "cache-cut").glob("*/chunk_000003.npz")).unlink()
    shutil.rmtree(outs["train"].parent)
    outs = run(mini, config(clips["full"]), tag="cut")
    assert "3 of 4 chunk(s) already encoded" in capsys.readouterr().out
    for split in SPLITS:
        assert outs[split].read_bytes() == whole[split].read_bytes()


def test_cache_is_reused_for_new_attributes_and_refreshed_for_changed_images(
    mini: MiniCeleba, clips, capsys
) -> None:
    first = read_split(run(mini, config(clips["full"]))["train"], ATTRS)
    capsys.readouterr()
    second = read_split(run(mini, config(clips["full"]), attributes=["Eyeglasses"])["train"])
    assert "4 of 4 chunk(s) already encoded" in capsys.readouterr().out
    np.testing.assert_array_equal(first.embeddings, second.embeddings)
    assert second.attribute_names == ("Eyeglasses",)

    face_like_image(np.random.default_rng(99), 120, 90).save(mini.image("000010.jpg"))
    third = read_split(run(mini, config(clips["full"]))["train"], ATTRS)
    assert "3 of 4 chunk(s) already encoded" in capsys.readouterr().out
    changed = np.flatnonzero(np.abs(third.embeddings - first.embeddings).max(axis=1) > 1e-6)
    assert list(third.image_ids[changed]) == ["000010.jpg"]

    run(mini, config(clips["full"], precision="bf16"))
    assert "0 of 4 chunk(s) already encoded" in capsys.readouterr().out  # precision is keyed


def test_worker_threads_do_not_change_results(mini: MiniCeleba, clips) -> None:
    inline = run(mini, config(clips["full"], workers=0), tag="w0")
    threaded = run(mini, config(clips["full"], workers=3), tag="w3")
    for split in SPLITS:
        a, b = read_split(inline[split]), read_split(threaded[split])
        np.testing.assert_array_equal(a.embeddings, b.embeddings)


def break_images(mini: MiniCeleba) -> None:
    """One missing image in train, a truncated one in val, a non-image in test."""
    mini.image("000002.jpg").unlink()
    data = mini.image("000020.jpg").read_bytes()
    mini.image("000020.jpg").write_bytes(data[: len(data) // 2])
    mini.image("000027.jpg").write_text("not a jpeg")


def test_skip_leaves_bad_images_out_and_counts_them(mini: MiniCeleba, clips, capsys) -> None:
    break_images(mini)
    outs = run(mini, config(clips["full"], on_bad_image="skip"))
    out = capsys.readouterr().out
    assert "skipped 3 image(s) (1 missing, 2 undecodable)" in out
    for split, n, bad in [("train", 17, "000002.jpg"), ("val", 5, "000020.jpg"),
                          ("test", 5, "000027.jpg")]:
        data = read_split(outs[split], ATTRS)
        assert len(data) == n and bad not in set(data.image_ids)
        assert data.metadata["skipped_images"] == 1
        assert data.metadata["skipped_image_names"] == [bad]
        assert f"({n} rows, celeba, 1 skipped)" in out
    full = read_split(run(write_mini_celeba(mini.root.parent / "clean", n=N),
                          config(clips["full"]), tag="clean")["train"])
    kept = read_split(outs["train"])
    np.testing.assert_array_equal(kept.image_ids, np.delete(full.image_ids, 1))
    np.testing.assert_allclose(kept.embeddings, np.delete(full.embeddings, 1, axis=0), atol=1e-6)


def test_error_on_missing_images_before_encoding(mini: MiniCeleba, clips) -> None:
    for i in (2, 5, 6, 7, 8, 9, 11):
        mini.image(f"{i:06d}.jpg").unlink()
    with pytest.raises(DataError) as info:
        run(mini, config(clips["full"]))
    message = str(info.value)
    assert "7 image(s) missing from the folder" in message
    assert "000002.jpg (list_attr_celeba.txt:4)" in message and "and 2 more" in message
    assert str(mini.root / "img_align_celeba") in message
    assert not (mini.root.parent / "cache-a").exists()


def test_error_on_undecodable_image_keeps_finished_chunks(
    mini: MiniCeleba, clips, capsys
) -> None:
    mini.image("000012.jpg").write_text("garbage")
    with pytest.raises(DataError) as info:
        run(mini, config(clips["full"]))
    message = str(info.value)
    assert "1 image(s) could not be decoded" in message
    assert "000012.jpg (list_attr_celeba.txt:14)" in message
    assert "images 9-16 of 30" in message
    assert chunk_files(mini) == ["chunk_000000.npz", "chunk_000001.npz"]
    capsys.readouterr()
    outs = run(mini, config(clips["full"], on_bad_image="skip"))
    assert "2 of 4 chunk(s) already encoded" in capsys.readouterr().out
    assert read_split(outs["train"]).metadata["skipped_images"] == 1


def test_a_split_left_empty_is_an_error(mini: MiniCeleba, clips) -> None:
    for i in np.flatnonzero(mini.splits == 1):
        mini.image(mini.names[i]).unlink()
    with pytest.raises(DataError, match="no usable images in split 'val' \\(6 skipped\\)"):
        run(mini, config(clips["full"], on_bad_image="skip"))
    assert not (mini.root.parent / "out-a").exists()  # no split is written


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def _no_config(folder: Path) -> None:
    (folder / "config.json").unlink()


def _not_clip(folder: Path) -> None:
    (folder / "config.json").write_text(json.dumps({"model_type": "vit"}))


def _no_weights(folder: Path) -> None:
    (folder / "model.safetensors").unlink()


def _bad_weights(folder: Path) -> None:
    (folder / "model.safetensors").write_bytes(b"\x00" * 64)


def _text_only(folder: Path) -> None:
    from safetensors.torch import load_file, save_file

    weights = load_file(folder / "model.safetensors")
    save_file({k: v for k, v in weights.items() if k.startswith("text")},
              folder / "model.safetensors", metadata={"format": "pt"})


@pytest.mark.parametrize(
    ("kind", "breakage", "words"),
    [
        ("vision", _no_config, "config.json: not found"),
        ("vision", _not_clip, "model_type 'vit' is not a CLIP checkpoint"),
        ("vision", _no_weights, "no weights"),
        ("vision", _bad_weights, "could not load the CLIP checkpoint"),
        ("full", _text_only, "lacks vision weights"),
    ],
)
def test_bad_checkpoint_folders(
    tmp_path: Path, clips, no_network, kind: str, breakage, words
) -> None:
    folder = shutil.copytree(clips[kind], tmp_path / "clip")
    breakage(folder)
    with pytest.raises(DataError, match=words):
        load_clip_encoder(folder)


@pytest.mark.parametrize("model_path", ["openai/clip-vit-base-patch32", "/nonexistent/clip"])
def test_hub_ids_and_missing_folders_are_never_downloaded(
    mini: MiniCeleba, no_network, model_path: str
) -> None:
    with pytest.raises(DataError, match="no such local folder.*never downloads"):
        run(mini, EmbedConfig(model_path=model_path))


def test_bf16_is_close_to_fp32(mini: MiniCeleba, clips) -> None:
    fp32 = read_split(run(mini, config(clips["full"]), tag="fp32")["val"])
    bf16 = read_split(run(mini, config(clips["full"], precision="bf16"), tag="bf16")["val"])
    assert bf16.metadata["encoder_info"]["precision"] == "bf16"
    cosines = (fp32.embeddings * bf16.embeddings).sum(axis=1)
    assert cosines.min() > 0.99


def test_bench_embed_reports_throughput_per_precision() -> None:
    from mini_celeba import TINY_VISION

    from fclf.cli.bench_embed import bench_embed

    result = bench_embed(batches=2, batch_size=3, device="cpu", workers=1,
                         vision_config=TINY_VISION)
    assert result["device"] == "cpu" and result["batch_size"] == 3
    for precision in ("fp32", "bf16"):
        timing = result["results"][precision]
        assert len(timing["batch_seconds"]) == 2
        assert timing["images_per_s"] == pytest.approx(3 / timing["batch_seconds_median"], rel=0.01)
    json.dumps(result)


def test_bench_is_a_cli_command() -> None:
    from typer.testing import CliRunner

    from fclf.cli.main import app

    result = CliRunner().invoke(app, ["bench", "embed", "--help"])
    assert result.exit_code == 0 and "images per batch" in result.output
    result = CliRunner().invoke(app, ["bench", "embed", "--device", "tpu"])
    assert result.exit_code != 0


def test_error_mode_does_not_accept_images_skipped_by_an_earlier_run(
    mini: MiniCeleba, clips
) -> None:
    mini.image("000003.jpg").write_text("garbage")
    run(mini, config(clips["full"], on_bad_image="skip"))
    with pytest.raises(DataError, match=r"1 image\(s\) could not be read from .*000003.jpg"):
        run(mini, config(clips["full"]))
