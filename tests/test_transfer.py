"""`fclf transfer`: one face edited by the flow, read by the probes, shown as real faces."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from fclf.cli.main import app
from fclf.cli.transfer.figure import PANEL_WIDTH, Panel, strip_panels
from fclf.cli.transfer.inputs import make_target, parse_assignments, read_source
from fclf.cli.transfer.nearest import Gallery
from fclf.config import ModelConfig
from fclf.data.embeddings_io import EmbeddingSplit, read_split, write_split
from fclf.errors import FclfError
from fclf.evaluate.probes import AttributeProbes
from fclf.model.field import build_field
from fclf.model.model_io import edit_function, save_model

NAMES = ["Smiling", "Eyeglasses", "Male"]
SYN_DIM = 32
STEPS = 10
DPI = 110  # write_transfer_figure's default



def invoke(*args: str):
    return CliRunner().invoke(app, ["transfer", *map(str, args)])


# --- synthetic data and a tiny trained model -----------------------------------------------


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> dict:
    from fclf.data.synthetic import generate
    from fclf.train.loop import TrainSettings, train
    from fclf.train.objectives import ObjectiveWeights

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("synthetic")
    splits = generate(NAMES, {"train": 80, "val": 15, "test": 15}, images_per_identity=5,
                      dim=SYN_DIM, seed=0)
    for name, split in splits.items():
        write_split(root / "emb" / f"{name}.parquet", split)
    config = ModelConfig(hidden_dim=64, attribute_embed_dim=8)
    torch.manual_seed(0)
    field = build_field(SYN_DIM, len(NAMES), config)
    tensors = [torch.as_tensor(a) for s in ("train", "val")
               for a in (splits[s].embeddings, splits[s].attributes)]
    train(field, *tensors, TrainSettings(learning_rate=3e-3, batch_size=64, epochs=15),
          ObjectiveWeights(objective="contrastive", lambda_curl=0.01, lambda_div=0.01,
                           lambda_identity=0.1),
          run_fingerprint="test", run_definition={}, progress=False)
    save_model(root / "model.pt", field, config, NAMES)
    other = build_field(SYN_DIM, len(NAMES), config)
    save_model(root / "other_attrs.pt", other, config, ["Smiling", "Male", "Eyeglasses"])
    probes = AttributeProbes.from_split(splits["train"])
    test = splits["test"]
    # a face read as not smiling that this small model does make smile (most of them)
    read = probes.predict(test.embeddings)
    target = read.copy()
    target[:, 0] = 1
    end = edit_function(field, config, STEPS, 0.1)(test.embeddings, target)[-1]
    after = probes.predict_proba(end)[:, 0]
    flipped = np.flatnonzero((read[:, 0] == 0) & (after > 0.6))
    assert len(flipped) > 0.5 * (read[:, 0] == 0).sum()
    # one of them whose Male reading is not in doubt (for --source-attr Male against it)
    male = probes.predict_proba(test.embeddings)[:, NAMES.index("Male")]
    decided = [i for i in flipped if abs(male[i] - 0.5) > 0.4]
    assert decided
    return {
        "root": root, "emb": root / "emb", "model": root / "model.pt",
        "other": root / "other_attrs.pt", "splits": splits,
        "not_smiling": str(test.image_ids[flipped[0]]),
        "male_decided": (str(test.image_ids[decided[0]]), int(male[decided[0]] >= 0.5)),
        "train_id": str(splits["train"].image_ids[0]),
    }


def syn_args(s: dict, *extra: str) -> list[str]:
    return ["--model", s["model"], "--embeddings", s["emb"], *extra]


def test_json_has_the_documented_shape_and_the_edit_works(synthetic) -> None:
    source_id = synthetic["not_smiling"]
    result = invoke(*syn_args(synthetic, "--image-id", source_id, "--set", "Smiling=1",
                              "--steps", STEPS, "--step-size", "0.1", "--json"))
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)  # nothing but JSON on stdout
    assert set(data) == {"source", "target", "steps", "reach"}
    assert data["reach"]["reached"] is True
    assert data["reach"]["attributes"]["Smiling"]["reached"] is True
    src = data["source"]
    assert src["kind"] == "image_id" and src["image_id"] == source_id and src["split"] == "test"
    assert src["attributes"]["Smiling"] == 0 and src["attributes_from"]["Smiling"] == "probe"
    assert set(src["labels"]) == set(NAMES) and isinstance(src["identity"], int)
    assert data["target"] == {**src["attributes"], "Smiling": 1}
    steps = data["steps"]
    assert [s["step"] for s in steps] == list(range(STEPS + 1))
    for s in steps:
        assert set(s) >= {"step", "probabilities", "cosine_to_source", "nearest_id",
                          "nearest_identity"}
        assert list(s["probabilities"]) == NAMES
        assert s["nearest_id"] != source_id  # the source itself is never its neighbour
    assert steps[0]["cosine_to_source"] == pytest.approx(1.0, abs=1e-5)
    assert steps[0]["probabilities"] == src["probabilities"]
    assert steps[-1]["cosine_to_source"] < 0.999  # it moved
    assert steps[-1]["probabilities"]["Smiling"] > 0.5 > steps[0]["probabilities"]["Smiling"]
    # the nearest real face is searched in every split
    all_ids = {str(i) for sp in synthetic["splits"].values() for i in sp.image_ids}
    assert {s["nearest_id"] for s in steps} <= all_ids
    assert "transfer: edit" in result.stderr


def test_table_output_and_source_attributes_given(synthetic) -> None:
    result = invoke(*syn_args(synthetic, "--image-id", synthetic["not_smiling"], "--set",
                              "Smiling=1", "--source-attr", "Male=1", "--steps", "3"))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"source: test {synthetic['not_smiling']}")
    assert "Male 1 (given; probe " in lines[1] and "Smiling 0 (probe" in lines[1]
    assert lines[2].startswith("target: Smiling 0->1 (others kept)")
    assert lines[3].split()[:4] == ["step", "Smiling->1", "Eyeglasses", "Male"]
    assert [line.split()[0] for line in lines[4:8]] == ["0", "1", "2", "3"]
    assert lines[8:-1] == [  # a short edit may stop short of the target: said on stderr
        line for line in lines[8:-1] if line.startswith("transfer: target not reached: ")]
    assert lines[-1].startswith("transfer: edit ")  # timing
    assert "ms (3 steps" in lines[-1]
    assert result.stderr == "".join(f"{line}\n" for line in lines[8:-1])


def test_synthetic_png_shows_the_readouts_and_says_so(synthetic, tmp_path) -> None:
    out = tmp_path / "figs" / "transfer.png"
    result = invoke(*syn_args(synthetic, "--image-id", synthetic["train_id"], "--split", "train",
                              "--set", "Eyeglasses=1", "--set", "Smiling=1", "--out", out,
                              "--json"))
    assert result.exit_code == 0, result.output
    json.loads(result.stdout)
    assert "synthetic" in result.stderr and str(out) in result.stderr
    with Image.open(out) as png:
        assert png.format == "PNG" and png.size[0] > 500
    assert [p.name for p in out.parent.iterdir()] == ["transfer.png"]  # no temp files left


@pytest.mark.parametrize(("name", "fmt"), [("t.jpg", "JPEG"), ("t.JPEG", "JPEG")])
def test_out_writes_the_format_its_suffix_names(synthetic, tmp_path, name, fmt) -> None:
    out = tmp_path / name
    result = invoke(*syn_args(synthetic, "--image-id", synthetic["not_smiling"], "--set",
                              "Smiling=1", "--steps", "2", "--out", out, "--json"))
    assert result.exit_code == 0, result.output
    with Image.open(out) as picture:
        assert picture.format == fmt and picture.mode == "RGB" and picture.size[0] > 500


def test_out_pdf_and_svg_are_vector_files(synthetic, tmp_path) -> None:
    for name, magic in (("t.pdf", b"%PDF-"), ("t.svg", b"<?xml")):
        out = tmp_path / name
        result = invoke(*syn_args(synthetic, "--image-id", synthetic["not_smiling"], "--set",
                                  "Smiling=1", "--steps", "2", "--out", out))
        assert result.exit_code == 0, result.output
        assert out.read_bytes().startswith(magic)


@pytest.mark.parametrize("name", ["t.gif", "transfer"])
def test_out_with_another_suffix_is_refused_before_the_edit(synthetic, tmp_path, name) -> None:
    out = tmp_path / name
    result = invoke(*syn_args(synthetic, "--image-id", synthetic["not_smiling"], "--set",
                              "Smiling=1", "--out", out))
    assert_user_error(result, f"--out {out}: ")
    assert "written as .png, .jpg/.jpeg, .pdf or .svg, chosen by the suffix" in result.stderr
    assert not out.exists() and "transfer: edit" not in result.output


def male_probabilities(result) -> list[float]:
    return [s["probabilities"]["Male"] for s in json.loads(result.stdout)["steps"]]


def test_a_source_attr_against_the_probes_is_named_and_not_moved(synthetic) -> None:
    """--source-attr Male=<not what the probes read>, Male not --set: the old command took it
    as a change (delta = given - the model's own reading) and moved Male while printing
    "others kept"; now the flow is told the given source (delta 0 for Male) and every output
    names the contradiction."""
    face, read = synthetic["male_decided"]
    said = 1 - read
    base = syn_args(synthetic, "--image-id", face, "--set", "Smiling=1", "--steps", STEPS,
                    "--step-size", "0.1")
    plain = invoke(*base, "--json")
    against = invoke(*base, "--source-attr", f"Male={said}", "--json")
    asked = invoke(*base, "--set", f"Male={said}", "--json")  # what moving Male looks like
    for result in (plain, against, asked):
        assert result.exit_code == 0, result.output
    start, end = male_probabilities(against)[0], male_probabilities(against)[-1]
    assert (start >= 0.5) == bool(read) and abs(start - 0.5) > 0.4
    moved = abs(male_probabilities(asked)[-1] - start)
    assert moved > 0.3  # an asked-for Male change does move it ...
    assert abs(end - start) < 0.1 * moved  # ... a contradicting source value does not
    assert abs(end - male_probabilities(plain)[-1]) < 0.05
    data = json.loads(against.stdout)
    assert data["source"]["overridden"] == {
        "Male": {"given": said, "probe_reading": read, "probability": pytest.approx(start)}}
    assert data["target"]["Male"] == said and list(data["reach"]["attributes"]) == ["Smiling"]
    assert (f"transfer: given against the probes: Male: you said {said}, the probes read "
            f"{read} (p={start:.2f}): kept as given means delta 0, so the flow does not move "
            f"Male") in against.stderr
    table = invoke(*base, "--source-attr", f"Male={said}")
    assert table.exit_code == 0, table.output
    target = table.stdout.splitlines()[2]
    assert target.startswith(f"target: Smiling 0->1 (others kept); Male: you said {said}, "
                             f"the probes read {read} (p={start:.2f}): kept as given")
    assert f"--set Male={said}" in target
    assert "given against the probes" not in table.stderr  # said once, on the target line


def test_a_source_attr_that_agrees_with_the_probes_says_nothing(synthetic) -> None:
    face, read = synthetic["male_decided"]
    base = syn_args(synthetic, "--image-id", face, "--set", "Smiling=1", "--steps", "3")
    result = invoke(*base, "--source-attr", f"Male={read}", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["source"]["overridden"] == {}
    assert data["source"]["attributes_from"]["Male"] == "given"
    assert "given against the probes" not in result.stderr and "you said" not in result.stderr
    table = invoke(*base, "--source-attr", f"Male={read}")
    assert table.stdout.splitlines()[2] == "target: Smiling 0->1 (others kept)"


def test_a_source_attr_against_the_probes_on_a_set_attribute_pushes_on(synthetic) -> None:
    """--source-attr Smiling=1 --set Smiling=0 on a face the probes read as not smiling: the
    flow is told 1->0 and pushes further towards 0, which the probes already read."""
    result = invoke(*syn_args(synthetic, "--image-id", synthetic["not_smiling"], "--steps", "3",
                              "--source-attr", "Smiling=1", "--set", "Smiling=0"))
    assert result.exit_code == 0, result.output
    target = result.stdout.splitlines()[2]
    assert target.startswith("target: Smiling 1->0 (others kept); Smiling: you said 1, the "
                             "probes read 0 (p=")
    assert target.endswith("the flow is told 1->0 and pushes Smiling towards 0, which the "
                           "probes already read")


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--set", "Smilng=1"], "unknown attribute 'Smilng' (did you mean 'Smiling'?)"),
        (["--set", "smiling=1"], "did you mean 'Smiling'?"),
        (["--set", "Bangs=1"], "the model was not trained on it"),
        (["--set", "Smiling=2"], "the value must be 0 or 1, not '2'"),
        (["--set", "Smiling"], "expected NAME=0 or NAME=1"),
        (["--set", "Smiling=1", "--set", "Smiling=0"], "given both as 0 and as 1"),
        ([], "nothing to change: add --set"),
        (["--source-attr", "Smiling=1", "--set", "Smiling=1"], "the target equals the source"),
        (["--set", "Smiling=1", "--step-size", "0"], "--step-size 0.0: must be > 0"),
    ],
)
def test_bad_attribute_arguments_fail_in_one_line(synthetic, args, words) -> None:
    result = invoke(*syn_args(synthetic, "--image-id", synthetic["not_smiling"], *args))
    assert_user_error(result, words)


def assert_user_error(result, words: str) -> None:
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    assert words in result.stderr
    assert "Traceback" not in result.output and result.stdout == ""


def test_bad_sources_fail_in_one_line(synthetic, tmp_path) -> None:
    face = tmp_path / "face.jpg"
    Image.new("RGB", (64, 64), (120, 90, 80)).save(face)
    cases = [
        (["--image-id", "nope.jpg"], "--image-id nope.jpg: no such image id in any split"),
        (["--image-id", synthetic["train_id"]], "not in split 'test' but in 'train'; pass "
                                                "--split train"),
        (["--image-id", synthetic["not_smiling"], "--split", "dev"],
         "--split dev: expected one of train, val, test"),
        (["--image", face], "--image needs a CLIP model: the embeddings in"),
        (["--image", face, "--image-id", synthetic["not_smiling"]], "exactly one of --image"),
        ([], "exactly one of --image"),
    ]
    for args, words in cases:
        assert_user_error(invoke(*syn_args(synthetic, *args, "--set", "Smiling=1")), words)
    result = invoke("--model", synthetic["other"], "--embeddings", synthetic["emb"],
                    "--image-id", synthetic["not_smiling"], "--set", "Smiling=1")
    assert_user_error(result, "was trained on attributes ['Smiling', 'Male', 'Eyeglasses'] but")
    result = invoke("--model", synthetic["root"] / "missing.pt", "--embeddings",
                    synthetic["emb"], "--image-id", "x", "--set", "Smiling=1")
    assert_user_error(result, "model file not found; run `dvc repro` (or `dvc repro train`)")
    result = invoke("--model", synthetic["model"], "--embeddings", synthetic["root"] / "none",
                    "--image-id", "x", "--set", "Smiling=1")
    assert_user_error(result, "embeddings folder not found; run `dvc repro embed`")


def test_a_missing_image_is_named_before_anything_is_loaded(synthetic, tmp_path) -> None:
    missing = tmp_path / "nonexistent.jpg"
    result = invoke(*syn_args(synthetic, "--image", missing, "--set", "Smiling=1"))
    assert_user_error(result, f"{missing}: image not found")
    assert "CLIP" not in result.stderr
    result = invoke(*syn_args(synthetic, "--image", tmp_path, "--set", "Smiling=1"))
    assert_user_error(result, f"{tmp_path}: a folder, not an image file")


def test_a_model_file_that_is_not_one_fails_in_one_line(synthetic, tmp_path) -> None:
    def run(model: Path):
        return invoke("--model", model, "--embeddings", synthetic["emb"], "--image-id",
                      synthetic["not_smiling"], "--set", "Smiling=1")

    params = tmp_path / "params.yaml"
    params.write_text("train:\n  epochs: 5\n")
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(bytes(range(256)))
    pickled = tmp_path / "pickled.pt"
    torch.save({"weights": np.zeros(3)}, pickled)  # numpy: refused by the safe loader
    tensor = tmp_path / "tensor.pt"
    torch.save(torch.zeros(3), tensor)
    npz = tmp_path / "arrays.npz"
    np.savez(npz, x=np.zeros(3))  # a zip archive, but not torch's
    other = tmp_path / "other.pt"
    torch.save({"step": 3}, other)
    hint = "--model takes the models/fclf.pt that `dvc repro train` writes"
    cases = {params: "(a text file)", empty: "(empty)", junk: "(not a torch archive)",
             pickled: "(a torch file holding objects other than tensors and plain values)",
             tensor: "(a torch file without the model record", npz: "(",
             other: "of format 2 (format None)"}
    for model, words in cases.items():
        result = run(model)
        assert_user_error(result, f"{model}: not an fclf model file {words}")
        assert "Please file an issue" not in result.stderr and "weights_only" not in result.stderr
        assert result.stderr.rstrip().endswith(hint)
    assert_user_error(run(tmp_path), f"{tmp_path}: a folder, not a model file")


def test_an_edit_that_stops_short_says_how_many_steps_it_would_need(synthetic) -> None:
    base = syn_args(synthetic, "--image-id", synthetic["not_smiling"], "--set", "Smiling=1",
                    "--step-size", "0.1")
    full = json.loads(invoke(*base, "--steps", STEPS, "--json").stdout)
    crossing = next(s["step"] for s in full["steps"] if s["probabilities"]["Smiling"] >= 0.5)
    assert crossing >= 2
    short = invoke(*base, "--steps", crossing - 1, "--json")
    assert short.exit_code == 0, short.output
    reach = json.loads(short.stdout)["reach"]
    smiling = reach["attributes"]["Smiling"]
    assert reach["reached"] is False and list(reach["attributes"]) == ["Smiling"]
    assert reach["steps"] == crossing - 1 and reach["searched_steps"] == 10 * (crossing - 1)
    assert smiling["target"] == 1 and smiling["final_probability"] < 0.5
    assert smiling["steps_needed"] == crossing  # the same path, continued
    assert (f"transfer: target not reached: Smiling->1 ends at probe "
            f"{smiling['final_probability']:.3f} after {crossing - 1} steps; at step size 0.1 "
            f"the probe reads >= 0.5 after {crossing} steps (1 more: --steps {crossing})"
            ) in short.stderr
    table = invoke(*base, "--steps", crossing - 1)
    assert "target not reached: Smiling->1" in table.stderr  # after the table, on stderr
    assert "target not reached" not in table.stdout


def test_reach_lines_when_never_reached() -> None:
    from fclf.cli.transfer.edit import reach_lines

    reach = {"reached": False, "steps": 10, "step_size": 0.1, "searched_steps": 100,
             "attributes": {"Eyeglasses": {"target": 1, "final_probability": 0.2,
                                           "reached": False, "steps_needed": None},
                            "Smiling": {"target": 0, "final_probability": 0.1,
                                        "reached": True}}}
    assert reach_lines(reach) == [
        "transfer: target not reached: Eyeglasses->1 ends at probe 0.200 after 10 steps; the "
        "probe does not read >= 0.5 within 100 steps at step size 0.1 either"]


# --- pure parts ----------------------------------------------------------------------------


def test_steps_default_to_the_horizon_recorded_in_the_model(synthetic, tmp_path) -> None:
    from fclf.config import FlowConfig
    from fclf.model.model_io import load_model

    field, config, record = load_model(synthetic["model"])
    model = tmp_path / "short.pt"
    save_model(model, field, config, record["attributes"],
               flow=FlowConfig(num_steps=4, step_size=0.25, integrator="rk4"))
    args = ["--model", model, "--embeddings", synthetic["emb"], "--image-id",
            synthetic["not_smiling"], "--set", "Smiling=1", "--json"]
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)["steps"]) == 5
    result = invoke(*args, "--steps", "2")
    assert len(json.loads(result.stdout)["steps"]) == 3
    result = invoke(*args, "--step-size", "0")
    assert result.exit_code != 0 and "--step-size 0.0: must be > 0" in result.output


def test_strip_panels_merge_consecutive_steps_with_the_same_face() -> None:
    assert strip_panels([4, 4, 7, 7, 7, 4, 9]) == [
        Panel(0, 1, 4), Panel(2, 4, 7), Panel(5, 5, 4), Panel(6, 6, 9)
    ]
    assert [p.label for p in strip_panels(["a", "a", "b"])] == ["steps 0-1", "step 2"]
    assert strip_panels([3]) == [Panel(0, 0, 3)] and strip_panels([]) == []


def test_parse_assignments() -> None:
    assert parse_assignments(["Smiling=1", " Male = 0 "], NAMES) == {"Smiling": 1, "Male": 0}
    assert parse_assignments(["Male=1", "Male=1"], NAMES) == {"Male": 1}
    with pytest.raises(FclfError, match="--source-attr Eyglasses=1: unknown attribute"):
        parse_assignments(["Eyglasses=1"], NAMES, "--source-attr")
    with pytest.raises(FclfError, match="the value must be 0 or 1, not 'yes'"):
        parse_assignments(["Male=yes"], NAMES)


def split_of(embeddings: np.ndarray, ids: list[str], identities: list[int]) -> EmbeddingSplit:
    e = np.asarray(embeddings, np.float32)
    e /= np.linalg.norm(e, axis=1, keepdims=True)
    return EmbeddingSplit(np.array(ids, dtype=object), np.array(identities),
                          np.zeros((len(ids), 1), np.int8), e, ("Smiling",))


def test_gallery_searches_every_split_and_excludes_the_source() -> None:
    gallery = Gallery.from_splits({
        "train": split_of([[1, 0, 0], [0, 1, 0]], ["a", "b"], [1, 2]),
        "test": split_of([[1, 0.1, 0], [0, 0, 1]], ["c", "d"], [3, -1]),
    })
    assert len(gallery) == 4 and gallery.locate("c", "test") == 2
    points = np.array([[1, 0, 0], [0, 0.1, 1], [1, 0.2, 0]], np.float32)
    index, cosine = gallery.nearest(points)
    assert list(index) == [0, 3, 2] and cosine[0] == pytest.approx(1.0)
    index, _ = gallery.nearest(points, exclude=0)
    assert list(index) == [2, 3, 2]
    assert [gallery.image_id(i) for i in index] == ["c", "d", "c"]
    assert gallery.identity(3) is None and gallery.identity(1) == 2
    with pytest.raises(FclfError, match="not in split 'test' but in 'train'"):
        gallery.locate("a", "test")


def test_source_reading_and_target() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, 8)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    y = np.stack([x[:, 0] > 0, x[:, 1] > 0], axis=1).astype(np.int8)
    probes = AttributeProbes(x, y, ["A", "B"])
    z = np.array([0.9, -0.4, 0, 0, 0, 0, 0, 0.2], np.float32)
    reading = read_source(probes, z)
    assert list(reading.attributes) == [1, 0] and not reading.given.any()
    assert list(make_target(["A", "B"], reading, {"B": 1})) == [1, 1]
    given = read_source(probes, z, {"A": 0})
    assert list(given.attributes) == [0, 0] and list(given.given) == [True, False]
    with pytest.raises(FclfError, match="target equals the source.*A=0 \\(given\\)"):
        make_target(["A", "B"], given, {"A": 0})


# --- mini CelebA with a tiny random CLIP ---------------------------------------------------

CELEBA_ATTRS = ["Smiling", "Male", "Young"]


@pytest.fixture(scope="module")
def celeba(tmp_path_factory: pytest.TempPathFactory) -> dict:
    pytest.importorskip("transformers")
    from mini_celeba import save_tiny_clip, write_mini_celeba

    from fclf.config import EmbedConfig
    from fclf.data.celeba_embed import embed_celeba

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("celeba")
    mini = write_mini_celeba(root / "celeba", n=30)
    clip = save_tiny_clip(root / "clip", "vision")
    other_clip = save_tiny_clip(root / "other_clip", "vision", seed=1)
    outs = {s: root / "emb" / f"{s}.parquet" for s in ("train", "val", "test")}
    embed_celeba(mini.root, CELEBA_ATTRS, EmbedConfig(model_path=str(clip), batch_size=8,
                                                      chunk_size=32, workers=0),
                 outs, root / "cache")
    config = ModelConfig(hidden_dim=32, attribute_embed_dim=4, init_scale=1.0)
    torch.manual_seed(0)
    save_model(root / "model.pt", build_field(16, 3, config), config, CELEBA_ATTRS)
    test = read_split(outs["test"])
    return {"root": root, "mini": mini, "emb": root / "emb", "model": root / "model.pt",
            "clip": clip, "other_clip": other_clip, "test": test}


def celeba_args(c: dict, *extra: str) -> list[str]:
    return ["--model", c["model"], "--embeddings", c["emb"], "--steps", "8", "--step-size",
            "0.3", *extra]


def png_panels(path: Path) -> int:
    """Panels in a face strip, from its width (PANEL_WIDTH inches per panel)."""
    with Image.open(path) as png:
        return round(png.size[0] / (PANEL_WIDTH * DPI))


def test_celeba_strip_has_one_panel_per_distinct_step(celeba, tmp_path) -> None:
    source_id = str(celeba["test"].image_ids[0])
    out = tmp_path / "strip.png"
    args = celeba_args(celeba, "--image-id", source_id, "--set", "Smiling=1", "--set",
                       "Male=1", "--source-attr", "Smiling=0", "--source-attr", "Male=0",
                       "--celeba-root", celeba["mini"].root, "--out", out, "--json")
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert len(data["steps"]) == 9
    nearest = [s["nearest_id"] for s in data["steps"]]
    assert source_id not in nearest
    panels = strip_panels(nearest)
    assert 1 < len(panels) < len(nearest)  # the path passes several faces, some repeatedly
    assert png_panels(out) == 1 + len(panels)
    assert f"wrote {out}" in result.stderr
    identities = dict(zip(celeba["mini"].names, celeba["mini"].identities.tolist(), strict=True))
    assert all(s["nearest_identity"] == identities[s["nearest_id"]] for s in data["steps"])


def test_celeba_root_from_the_metadata(celeba, tmp_path) -> None:
    emb = tmp_path / "emb"
    for name in ("train", "val", "test"):
        split = read_split(celeba["emb"] / f"{name}.parquet")
        split.metadata["celeba_root"] = str(celeba["mini"].root)
        write_split(emb / f"{name}.parquet", split)
    out = tmp_path / "strip.png"
    args = ["--model", celeba["model"], "--embeddings", emb, "--image-id",
            str(celeba["test"].image_ids[1]), "--set", "Young=1", "--source-attr", "Young=0",
            "--out", out]
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    assert out.exists() and png_panels(out) >= 2


def test_new_image_is_embedded_like_the_embed_stage(celeba) -> None:
    """An image of the data, given as --image, lands on its own stored embedding."""
    name = str(celeba["test"].image_ids[2])
    image = celeba["mini"].image(name)
    result = invoke(*celeba_args(celeba, "--image", image, "--set", "Smiling=1",
                                 "--source-attr", "Smiling=0", "--json"))
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["source"] == {**data["source"], "kind": "image", "path": str(image)}
    first = data["steps"][0]
    assert first["nearest_id"] == name and first["nearest_cosine"] == pytest.approx(1, abs=1e-5)
    assert "embedded in" in result.stderr


def test_celeba_errors(celeba, tmp_path) -> None:
    source_id = str(celeba["test"].image_ids[0])
    # The embed stage records celeba_root in the metadata, so --out needs no --celeba-root.
    result = invoke(*celeba_args(celeba, "--image-id", source_id, "--set", "Smiling=1",
                                 "--source-attr", "Smiling=0", "--out", tmp_path / "x.png"))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "x.png").stat().st_size > 0
    image = celeba["mini"].image(source_id)
    result = invoke(*celeba_args(celeba, "--image", image, "--clip", celeba["other_clip"],
                                 "--set", "Smiling=1"))
    assert_user_error(result, "is not the encoder of")
    result = invoke(*celeba_args(celeba, "--image", tmp_path / "none.jpg", "--set",
                                 "Smiling=1"))
    assert_user_error(result, "none.jpg: image not found")


def test_the_readout_figure_marks_a_target_that_was_not_reached():
    from types import SimpleNamespace

    from fclf.cli.transfer.figure import readout_figure, unreached

    probs = np.array([[0.1, 0.9, 0.2], [0.2, 0.9, 0.6], [0.3, 0.9, 0.8]])
    path = SimpleNamespace(attribute_names=("Smiling", "Young", "Eyeglasses"),
                           target=np.array([1, 1, 1]), probabilities=probs, num_steps=2,
                           cosine_to_source=np.ones(3), nearest_cosine=np.ones(3))
    src = {"Smiling": 0, "Young": 1, "Eyeglasses": 0}
    assert unreached(path, src) == ["Smiling"]  # Eyeglasses crossed 0.5, Young was kept
    source = {"kind": "image", "path": "x.jpg", "attributes": src}
    fig = readout_figure(source, path)
    top = fig.axes[0]
    labels = [t.get_text() for t in top.get_legend().get_texts()]
    assert "Smiling 0->1 NOT REACHED" in labels and "Eyeglasses 0->1" in labels
    assert "NOT reached: Smiling" in top.get_title()


# --- the read-out probes the pipeline saved (fit-judge stage: models/probes.pt) -------------


def test_saved_probes_are_reused_and_give_what_a_fresh_fit_gives(synthetic, tmp_path) -> None:
    from fclf.evaluate.probes_io import save_probes, split_fingerprint

    train = synthetic["splits"]["train"]
    saved = tmp_path / "probes.pt"
    save_probes(saved, AttributeProbes.from_split(train), split_fingerprint(train))
    args = syn_args(synthetic, "--image-id", synthetic["not_smiling"], "--set", "Smiling=1",
                    "--json")
    reused = invoke(*args, "--probes", saved)
    fitted = invoke(*args, "--probes", tmp_path / "absent.pt")
    assert reused.exit_code == 0 and fitted.exit_code == 0, reused.output + fitted.output
    assert f"probes read from {saved} in" in reused.stderr
    assert "probes fitted in" in fitted.stderr
    assert json.loads(reused.stdout) == json.loads(fitted.stdout)


def test_saved_probes_that_do_not_fit_are_refitted_and_say_why(synthetic, tmp_path) -> None:
    from fclf.evaluate.probes_io import save_probes, split_fingerprint

    splits = synthetic["splits"]
    other_c, other_split = tmp_path / "c.pt", tmp_path / "val.pt"
    save_probes(other_c, AttributeProbes.from_split(splits["train"], c=0.5),
                split_fingerprint(splits["train"]))
    save_probes(other_split, AttributeProbes.from_split(splits["val"]),
                split_fingerprint(splits["val"]))
    args = syn_args(synthetic, "--image-id", synthetic["not_smiling"], "--set", "Smiling=1",
                    "--json")
    expected = json.loads(invoke(*args, "--probes", tmp_path / "absent.pt").stdout)
    for path, why in [(other_c, "fitted with C = 0.5, not 1"),
                      (other_split, "fitted on another train split"),
                      (synthetic["model"], "not a probes file of this version")]:
        result = invoke(*args, "--probes", path)
        assert result.exit_code == 0, result.output
        assert f"probes fitted ({path}: {why}) in" in result.stderr, result.stderr
        assert json.loads(result.stdout) == expected
    # the saved C = 0.5 probes are the right ones when C = 0.5 is asked for
    asked = invoke(*args, "--probes", other_c, "--probe-c", "0.5")
    assert f"probes read from {other_c} in" in asked.stderr, asked.stderr
