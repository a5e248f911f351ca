"""fclf.data.clip_preprocess: same pixels as transformers' CLIPImageProcessor; decode pipeline."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import numpy as np
import pytest
from mini_celeba import face_like_image
from PIL import Image

from fclf.data.clip_preprocess import (
    CLIP_MEAN,
    CLIP_STD,
    ClipPreprocess,
    load_pixels,
    load_preprocess,
    map_batches,
)
from fclf.errors import DataError

transformers = pytest.importorskip("transformers")
# CLIP's PIL/numpy processor (transformers >= 5 gives it this name; before, the plain one)
PIL_PROCESSOR = getattr(transformers, "CLIPImageProcessorPil", transformers.CLIPImageProcessor)

SIZES = [(178, 218), (218, 178), (60, 40), (41, 300), (224, 224), (225, 224), (640, 480)]


def reference(image: Image.Image, **config) -> np.ndarray:
    processor = PIL_PROCESSOR(**config)
    return processor(images=image, return_tensors="np")["pixel_values"][0]


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_matches_transformers_clip_image_processor(width: int, height: int) -> None:
    rng = np.random.default_rng(width * 1000 + height)
    image = Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
    ours = ClipPreprocess()(image)
    assert ours.shape == (3, 224, 224) and ours.dtype == np.float32
    assert ours.flags.c_contiguous
    np.testing.assert_allclose(ours, reference(image), rtol=0, atol=1e-6)


def test_grayscale_and_jpeg_files_match(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    color = tmp_path / "color.jpg"
    face_like_image(rng, 178, 218).save(color, quality=90)
    gray = tmp_path / "gray.jpg"
    face_like_image(rng, 150, 100).convert("L").save(gray)
    for path in (color, gray):
        pixels, reason = load_pixels(path, ClipPreprocess())
        assert reason is None
        np.testing.assert_allclose(pixels, reference(Image.open(path)), rtol=0, atol=1e-6)


def test_reads_the_checkpoint_preprocessor_config(tmp_path: Path) -> None:
    assert load_preprocess(tmp_path) == ClipPreprocess()  # absent: CLIP's defaults
    config = {
        "size": {"shortest_edge": 256}, "crop_size": {"height": 224, "width": 224},
        "image_mean": [0.5, 0.5, 0.5], "image_std": [0.25, 0.5, 1.0], "resample": 2,
        "do_resize": True, "do_center_crop": True, "do_normalize": True, "do_rescale": True,
        "rescale_factor": 1 / 255, "image_processor_type": "CLIPImageProcessor",
    }
    (tmp_path / "preprocessor_config.json").write_text(json.dumps(config))
    preprocess = load_preprocess(tmp_path)
    assert (preprocess.shortest_edge, preprocess.mean, preprocess.resample) == (
        256, (0.5, 0.5, 0.5), 2
    )
    image = face_like_image(np.random.default_rng(2), 300, 200)
    hf_config = {k: v for k, v in config.items() if k != "image_processor_type"}
    np.testing.assert_allclose(preprocess(image), reference(image, **hf_config), atol=1e-6)
    assert not np.allclose(preprocess(image), ClipPreprocess()(image))


def test_old_style_integer_sizes(tmp_path: Path) -> None:
    (tmp_path / "preprocessor_config.json").write_text(json.dumps({"size": 224, "crop_size": 224}))
    assert load_preprocess(tmp_path) == ClipPreprocess()
    assert ClipPreprocess().mean == CLIP_MEAN and ClipPreprocess().std == CLIP_STD


@pytest.mark.parametrize(
    ("config", "words"),
    [
        ({"do_center_crop": False}, "do_center_crop = False is not supported"),
        ({"size": {"height": 224, "width": 224}}, "expected shortest_edge"),
        ({"size": 200, "crop_size": 224}, "larger than size"),
        ({"image_mean": [0.5, 0.5]}, "3 values"),
    ],
)
def test_unsupported_preprocessor_config_is_a_clear_error(
    tmp_path: Path, config: dict, words: str
) -> None:
    path = tmp_path / "preprocessor_config.json"
    path.write_text(json.dumps(config))
    with pytest.raises(DataError, match=str(path)) as info:
        load_preprocess(tmp_path)
    assert words in str(info.value)


def test_bad_images_are_reported_never_replaced(tmp_path: Path) -> None:
    good = tmp_path / "good.jpg"
    face_like_image(np.random.default_rng(3), 178, 218).save(good)
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    text = tmp_path / "text.jpg"
    text.write_text("not an image")
    assert load_pixels(tmp_path / "absent.jpg", ClipPreprocess()) == (None, "missing")
    for path in (truncated, text):
        pixels, reason = load_pixels(path, ClipPreprocess())
        assert pixels is None and reason.startswith("undecodable"), reason


@pytest.mark.parametrize("workers", [0, 1, 3])
def test_map_batches_keeps_order_and_sizes(workers: int) -> None:
    batches = list(map_batches(lambda x: x * x, list(range(23)), 5, workers))
    assert [len(b) for b in batches] == [5, 5, 5, 5, 3]
    assert [y for b in batches for y in b] == [x * x for x in range(23)]


def test_decoding_in_threads_gives_the_same_pixels(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    paths = []
    for i, (w, h) in enumerate(SIZES):
        paths.append(tmp_path / f"{i}.jpg")
        face_like_image(rng, w, h).save(paths[-1])
    load = partial(load_pixels, preprocess=ClipPreprocess())
    inline = [p for b in map_batches(load, paths, 3, 0) for p, _ in b]
    threaded = [p for b in map_batches(load, paths, 3, 2) for p, _ in b]
    for a, b in zip(inline, threaded, strict=True):
        np.testing.assert_array_equal(a, b)
