"""The sweep file (fclf.sweep.spec): grid, names, values for `-S`, sample, shards, and the
errors a bad file gets, checked against the repository's real params.yaml."""

from __future__ import annotations

import itertools
import random
import re
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest
import yaml

from fclf.config import _Loader, leaf_keys, load_config
from fclf.errors import ConfigError, FclfError
from fclf.sweep.spec import (
    SELECTABLE,
    GridPoint,
    Selection,
    abbreviate,
    load_sweep,
    name_text,
    parse_shard,
    safe_name,
    shard,
    yaml_value,
)

PARAMS = Path(__file__).resolve().parents[1] / "params.yaml"
GIT = shutil.which("git")


def write(tmp_path: Path, text: str, filename: str = "g.yaml") -> Path:
    path = tmp_path / filename
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def load(tmp_path: Path, text: str, filename: str = "g.yaml"):
    return load_sweep(write(tmp_path, text, filename), PARAMS)


def sweep_error(tmp_path: Path, text: str, filename: str = "g.yaml") -> tuple[str, Path, str]:
    """The ConfigError message of a bad sweep file, its path and its (dedented) text."""
    path = write(tmp_path, text, filename)
    with pytest.raises(ConfigError) as info:
        load_sweep(path, PARAMS)
    message = str(info.value)
    assert str(path) in message, message
    return message, path, path.read_text(encoding="utf-8")


def line_of(text: str, needle: str) -> int:
    """1-based line of the first line of `text` that contains `needle`."""
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def assert_at(message: str, path: Path, text: str, needle: str) -> None:
    assert f"{path}:{line_of(text, needle)}:" in message, message


def git_refused(names: list[str]) -> list[str]:
    """The names that `git check-ref-format refs/exps/ab/cdef/<name>` refuses (one shell for
    all: a process per name from Python is slow)."""
    script = ('for n in "$@"; do "$0" check-ref-format "refs/exps/ab/cdef/$n" '
              '|| printf "%s\\n" "$n"; done')
    result = subprocess.run(["sh", "-c", script, GIT, *names], capture_output=True, text=True,
                            check=True)
    return result.stdout.splitlines()


needs_git = pytest.mark.skipif(GIT is None, reason="git is not installed")


# ------------------------------------------------------------------------------------- grid

THREE_KEYS = textwrap.dedent("""\
    name: g
    params:
      loss.lambda_identity: [0, 1, 10]
      train.flip_prob: [0.25, 0.5]
      model.sphere: [true, false]
    """)


def test_grid_size_is_the_product_of_the_value_lists(tmp_path):
    sweep = load(tmp_path, THREE_KEYS)
    assert sweep.grid_size == 3 * 2 * 2
    assert len(sweep.points()) == 12
    assert sweep.params == {"loss.lambda_identity": [0, 1, 10], "train.flip_prob": [0.25, 0.5],
                            "model.sphere": [True, False]}
    assert sweep.sample is None and sweep.seed == 0 and sweep.name == "g"


def test_point_order_first_param_varies_slowest(tmp_path):
    sweep = load(tmp_path, THREE_KEYS)
    keys = list(sweep.params)
    expected = list(itertools.product(*sweep.params.values()))
    for index, combo in enumerate(expected):
        point = sweep.point(index)
        assert isinstance(point, GridPoint)
        assert point.index == index
        assert point.overrides == tuple(zip(keys, combo, strict=True))
    assert [p.index for p in sweep.points()] == list(range(12))
    assert sweep.points() == [sweep.point(i) for i in range(12)]
    # first param slowest, last fastest
    assert sweep.point(0).overrides[0][1] == sweep.point(3).overrides[0][1] == 0
    assert sweep.point(4).overrides[0][1] == 1
    assert sweep.point(0).overrides[2][1] is True and sweep.point(1).overrides[2][1] is False


def test_point_outside_the_grid_is_refused(tmp_path):
    sweep = load(tmp_path, THREE_KEYS)
    for index in (12, 13, 100, -1):
        with pytest.raises(IndexError):
            sweep.point(index)


def test_every_point_is_a_distinct_combination(tmp_path):
    sweep = load(tmp_path, THREE_KEYS)
    overrides = [p.overrides for p in sweep.points()]
    assert len(set(overrides)) == sweep.grid_size
    assert {tuple(v for _, v in o) for o in overrides} == set(
        itertools.product(*sweep.params.values()))


def test_names_are_readable(tmp_path):
    sweep = load(tmp_path, """\
        name: g
        params:
          loss.lambda_identity: [30]
          train.flip_prob: [0.5]
        """)
    assert [p.name for p in sweep.points()] == ["g-li30-fp0.5"]
    sweep = load(tmp_path, THREE_KEYS)
    assert sweep.point(0).name == "g-li0-fp0.25-spheretrue"
    assert sweep.point(11).name == "g-li10-fp0.5-spherefalse"


def test_names_are_distinct_and_depend_on_the_file_only(tmp_path):
    first = load(tmp_path, THREE_KEYS)
    names = [p.name for p in first.points()]
    assert len(set(names)) == len(names)
    again = load(tmp_path, THREE_KEYS)
    assert [p.name for p in again.points()] == names


def test_name_defaults_to_the_file_name(tmp_path):
    sweep = load(tmp_path, """\
        params:
          loss.lambda_identity: [1, 10]
        """, filename="identity.yaml")
    assert sweep.name == "identity"
    assert [p.name for p in sweep.points()] == ["identity-li1", "identity-li10"]


AWKWARD_STRINGS = textwrap.dedent("""\
    name: g
    params:
      train.seed: [-1, 0, 7]
      data.celeba_root: ["a b", "x/y", "..", ".hidden", "end.", "x.lock", "@{u}", "@",
                         "~^:?*[\\\\", "-lead", "1e-05", "10", "true", "café", "a..b",
                         " pad ", "tab\\there", "new\\nline", "q'\\"q"]
    """)

AWKWARD_TYPES = textwrap.dedent("""\
    name: other.sweep_1
    params:
      loss.lambda_curl: [1.0e-05, 0.0, 1.0e+20]
      data.attributes: [[Smiling, Young], [Male, Young, Smiling]]
      model.sphere: [true, false]
      embed.model_path: [null, "m p/clip"]
      eval.num_samples: [null, 100]
    """)


@needs_git
@pytest.mark.parametrize("text", [AWKWARD_STRINGS, AWKWARD_TYPES, THREE_KEYS])
def test_names_are_distinct_valid_git_refs(tmp_path, text):
    sweep = load(tmp_path, text)
    names = [p.name for p in sweep.points()]
    assert len(names) == sweep.grid_size
    assert len(set(names)) == len(names)
    assert git_refused(names) == []
    for name in names:
        assert name.startswith(sweep.name + "-")
        assert safe_name(name) == name


def test_awkward_values_get_readable_names(tmp_path):
    sweep = load(tmp_path, AWKWARD_TYPES)
    names = {p.name for p in sweep.points()}
    assert "other.sweep_1-lc1e-05-attributesSmiling+Young-spheretrue-mpnull-nsnull" in names
    assert "other.sweep_1-lc1e+20-attributesMale+Young+Smiling-spherefalse-mpm_p_clip-ns100" \
        in names
    sweep = load(tmp_path, AWKWARD_STRINGS)
    names = {p.name for p in sweep.points()}
    assert "g-seed-1-cra_b" in names
    assert "g-seed0-crx_y" in names
    assert "g-seed7-cr1e-05" in names
    assert "g-seed7-crend" in names and "g-seed7-cr" in names  # 'end.' and '..'


AWKWARD_TEXTS = ["x.", "..", ".", "a.lock", "a.lock.", "-", "@", "@{", "a/b", "", "a b",
                 "~^:?*[\\", "a..b", ".x", "-.x", "x/.y", "é", "x.lock.lock", "a//b", "a\tb",
                 "a\nb", "HEAD", "@{-1}", "a.", "a/.", "a-", "+", "=", ". .", "x/"]


def check_safe_name(name: str) -> None:
    """git's rules for one ref component (git-check-ref-format(1)), and idempotence."""
    assert name
    assert re.fullmatch(r"[A-Za-z0-9._+=-]+", name), name
    assert ".." not in name and not name.startswith(".") and not name.endswith(".")
    assert not name.endswith(".lock") and not name.startswith("-")
    assert safe_name(name) == name


@needs_git
def test_safe_name_gives_git_refs():
    names = [safe_name(text) for text in AWKWARD_TEXTS]
    names += [safe_name("g-" + text) for text in AWKWARD_TEXTS]
    rng = random.Random(0)
    alphabet = "ab.-_/ @{}~^:?*[]\\\t+=é"
    names += [safe_name("".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12))))
              for _ in range(60)]
    for name in names:
        check_safe_name(name)
    assert git_refused(names) == []


def test_safe_name_follows_git_rules_for_any_text():
    rng = random.Random(1)
    alphabet = [chr(c) for c in range(0, 0x80)] + list("éß€😀\u2028\u00a0")
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 16)))
        check_safe_name(safe_name(text))
        check_safe_name(safe_name("g-" + text))


def test_values_whose_names_clash_are_refused(tmp_path):
    message, path, _ = sweep_error(tmp_path, """\
        name: g
        params:
          data.celeba_root: ["a b", "a_b"]
        """)
    assert "same experiment name" in message and "'g-cra_b'" in message


@pytest.mark.parametrize(("value", "text"), [
    (True, "true"), (False, "false"), (None, "null"), (30, "30"), (0.5, "0.5"),
    (1e-05, "1e-05"), (-2.0, "-2"), (["a", "b"], "a+b"), ("x", "x")])
def test_name_text(value, text):
    assert name_text(value) == text


# ------------------------------------------------------------------------------- abbreviate

def test_abbreviate_uses_initials_when_alone():
    assert abbreviate(["loss.lambda_identity", "train.epochs", "train.flip_prob"]) == {
        "loss.lambda_identity": "li", "train.epochs": "epochs", "train.flip_prob": "fp"}


def test_abbreviate_clashing_initials_get_the_leaf():
    keys = ["loss.lambda_curl", "loss.lambda_contrastive", "loss.lambda_identity"]
    assert abbreviate(keys) == {"loss.lambda_curl": "lambda_curl",
                                "loss.lambda_contrastive": "lambda_contrastive",
                                "loss.lambda_identity": "li"}


def test_abbreviate_clashing_leaves_get_the_whole_key():
    keys = ["data.seed", "train.seed", "train.epochs"]
    assert abbreviate(keys) == {"data.seed": "data_seed", "train.seed": "train_seed",
                                "train.epochs": "epochs"}


def test_abbreviate_does_not_depend_on_key_order():
    keys = ["data.seed", "train.seed", "loss.lambda_curl", "loss.lambda_contrastive",
            "loss.lambda_identity", "train.epochs"]
    first = abbreviate(keys)
    for order in itertools.permutations(keys):
        assert abbreviate(list(order)) == first


def test_abbreviate_every_schema_key_distinctly():
    keys = leaf_keys()
    labels = abbreviate(keys)
    assert list(labels) == keys
    assert len(set(labels.values())) == len(keys)
    for label in labels.values():
        assert label and safe_name(label) == label


def test_clashing_keys_in_a_sweep_give_distinct_names(tmp_path):
    sweep = load(tmp_path, """\
        name: g
        params:
          data.seed: [0, 1]
          train.seed: [0, 1]
          loss.lambda_curl: [0.0]
          loss.lambda_contrastive: [0.0]
        """)
    names = [p.name for p in sweep.points()]
    assert names[1] == "g-data_seed0-train_seed1-lambda_curl0-lambda_contrastive0"
    assert len(set(names)) == 4


# ------------------------------------------------------------------------------- yaml_value

ROUND_TRIP = [
    1e-05, 0.1, 0.5, 1e20, -2.5e-07, 10.0, 0.0, -0.0, 123456.789, 1e-300, 0, 1, -3, 10**20,
    True, False, None,
    "10", "-1", "1.5", "true", "True", "false", "yes", "no", "on", "off", "y", "null", "Null",
    "~", "1e-05", "1e5", "1E5", "0x10", "0o17", "1_000", "inf", ".inf", "-inf", "nan", ".nan",
    "a,b", "a #b", "#x", "a: b", "a:b", "- x", "[x", "x]", "{x}", "*star", "&anchor", "!tag",
    "%pct", "@at", "`tick", "|", ">", "?", "", " lead", "trail ", "it's", 'say "hi"',
    "a\\b", "café", "a\nb", "tab\there", "=", "x=y", "${oc.env:HOME}",
    "data/celeba", "flow_matching", "auto", "Smiling",
    [], ["Smiling", "Young"], [1e-05, "a b", None, True, 3], [["a"], []], {"Bald": 0.02},
    {"Gray_Hair": 1e-05, "Bald": 0.5},
]


@pytest.mark.parametrize("value", ROUND_TRIP, ids=repr)
def test_yaml_value_reads_back_with_pyyaml_and_the_fclf_loader(value):
    text = yaml_value(value)
    for loaded in (yaml.safe_load(text), yaml.load(text, Loader=_Loader)):
        assert loaded == value
        assert type(loaded) is type(value)


def test_yaml_value_keeps_plain_values_plain():
    assert yaml_value(0.5) == "0.5"
    assert yaml_value(30) == "30"
    assert yaml_value(1e-05) == "1.0e-05"
    assert yaml_value(1e20) == "1.0e+20"
    assert yaml_value(True) == "true" and yaml_value(None) == "null"
    assert yaml_value("flow_matching") == "flow_matching"
    assert yaml_value("data/celeba") == "data/celeba"
    assert yaml_value(["Smiling", "Young"]) == "[Smiling, Young]"
    assert yaml_value("10") != "10" and yaml_value("true") != "true"


# What Hydra's override grammar (DVC's `-S`) cannot say the same way as YAML: a newline or a
# tab in a string, and a string with a quote and a backslash.
NOT_HYDRA = {"a\nb", "tab\there"}


@pytest.fixture(scope="module")
def hydra_parser():
    parser_module = pytest.importorskip("hydra.core.override_parser.overrides_parser")
    return parser_module.OverridesParser.create()


@pytest.mark.parametrize("value", [v for v in ROUND_TRIP if not (
    isinstance(v, str) and v in NOT_HYDRA)], ids=repr)
def test_yaml_value_reads_back_with_dvc_set_param_grammar(hydra_parser, value):
    override = hydra_parser.parse_overrides([f"k={yaml_value(value)}"])[0]
    assert not override.is_sweep_override()
    assert override.value() == value


def test_set_args_in_param_order(tmp_path):
    sweep = load(tmp_path, """\
        name: g
        params:
          train.flip_prob: [0.25, 0.5]
          loss.lambda_curl: [1.0e-05]
          data.attributes: [[Smiling, Young]]
          data.celeba_root: ["10"]
          embed.model_path: [null]
        """)
    assert sweep.point(1).set_args() == [
        "-S", "train.flip_prob=0.5", "-S", "loss.lambda_curl=1.0e-05",
        "-S", "data.attributes=[Smiling, Young]", "-S", "data.celeba_root='10'",
        "-S", "embed.model_path=null"]
    for point in sweep.points():
        args = point.set_args()
        assert args[::2] == ["-S"] * len(sweep.params)
        assert [a.split("=", 1)[0] for a in args[1::2]] == list(sweep.params)


def test_set_args_applied_by_dvc_give_the_grid_point(tmp_path):
    hydra_utils = pytest.importorskip("dvc.utils.hydra")
    sweep = load(tmp_path, """\
        name: g
        params:
          data.celeba_root: ["1e-05", "a b", "true", "x,y", "it's"]
          loss.lambda_curl: [1.0e-05]
          data.attributes: [[Male, Young]]
          embed.model_path: [null]
          train.seed: [-3]
        """)
    for point in sweep.points():
        params = tmp_path / "params.yaml"
        shutil.copyfile(PARAMS, params)
        hydra_utils.apply_overrides(params, point.set_args()[1::2])
        config = load_config(params)
        for key, value in point.overrides:
            section, leaf = key.split(".")
            assert getattr(getattr(config, section), leaf) == value, key


# ----------------------------------------------------------------------------------- sample

BIG = textwrap.dedent("""\
    name: g
    params:
      loss.lambda_identity: [0, 1, 3, 10, 30, 100]
      train.flip_prob: [0.1, 0.25, 0.5, 0.75, 0.9]
      train.epochs: [1, 2, 3, 4]
    """)


def test_sample_is_a_reproducible_subset_of_the_grid(tmp_path):
    sweep = load(tmp_path, BIG + "sample: 10\nseed: 3\n")
    assert sweep.grid_size == 120 and sweep.sample == 10 and sweep.seed == 3
    points = sweep.points()
    assert len(points) == 10
    indices = [p.index for p in points]
    assert indices == sorted(indices) and len(set(indices)) == 10
    assert all(p == sweep.point(p.index) for p in points)
    whole = {p.overrides for p in load(tmp_path, BIG, "whole.yaml").points()}
    assert {p.overrides for p in points} <= whole
    assert sweep.points() == points
    assert load(tmp_path, BIG + "sample: 10\nseed: 3\n", "again.yaml").points() == [
        GridPoint(p.index, p.name, p.overrides) for p in points]


def test_another_seed_gives_another_sample(tmp_path):
    first = [p.index for p in load(tmp_path, BIG + "sample: 10\nseed: 0\n").points()]
    second = [p.index for p in load(tmp_path, BIG + "sample: 10\nseed: 1\n").points()]
    assert first != second
    default = [p.index for p in load(tmp_path, BIG + "sample: 10\n").points()]
    assert default == first


@pytest.mark.parametrize("size", [120, 121, 1000])
def test_sample_as_big_as_the_grid_is_the_grid(tmp_path, size):
    sweep = load(tmp_path, BIG + f"sample: {size}\nseed: 5\n")
    assert [p.index for p in sweep.points()] == list(range(120))


def test_sample_null_is_the_grid(tmp_path):
    sweep = load(tmp_path, BIG + "sample: null\n")
    assert len(sweep.points()) == 120


# ----------------------------------------------------------------------------------- shards

@pytest.mark.parametrize(("text", "expected"), [
    ("1/2", (1, 2)), (" 2 / 2 ", (2, 2)), ("1/1", (1, 1)), ("7/10", (7, 10)), ("3/3", (3, 3))])
def test_parse_shard_accepts(text, expected):
    assert parse_shard(text) == expected


@pytest.mark.parametrize("text", ["3/2", "0/2", "1/0", "0/0", "a/b", "1-2", "1/2/3", "", "/2",
                                  "1/", "-1/2", "1.0/2", "12"])
def test_parse_shard_rejects_naming_the_spec(text):
    with pytest.raises(FclfError) as info:
        parse_shard(text)
    message = str(info.value)
    assert "--shard" in message
    assert text.strip() in message


def test_parse_shard_explains_one_based_indices():
    with pytest.raises(FclfError, match="count from 1"):
        parse_shard("0/4")
    with pytest.raises(FclfError, match="between 1 and 2"):
        parse_shard("3/2")
    with pytest.raises(FclfError, match="at least 1"):
        parse_shard("1/0")


GRIDS = {
    "one": "params:\n  train.epochs: [3]\n",
    "two": "params:\n  train.epochs: [3, 4]\n",
    "five": "params:\n  train.epochs: [1, 2, 3, 4, 5]\n",
    "twelve": "params:\n  train.epochs: [1, 2, 3]\n  train.flip_prob: [0.1, 0.2, 0.3, 0.4]\n",
    "sampled": ("params:\n  train.epochs: [1, 2, 3, 4]\n  train.flip_prob: [0.1, 0.2, 0.3, 0.4,"
                " 0.5, 0.6]\nsample: 7\nseed: 11\n"),
}


@pytest.mark.parametrize("grid", list(GRIDS))
def test_shards_split_the_points_exactly_once(tmp_path, grid):
    path = write(tmp_path, GRIDS[grid], f"{grid}.yaml")
    points = load_sweep(path, PARAMS).points()
    fresh = load_sweep(path, PARAMS).points()  # as another machine reads the file
    for count in range(1, 8):
        shards = [shard(points, index, count) for index in range(1, count + 1)]
        together = [p for part in shards for p in part]
        assert sorted(p.index for p in together) == sorted(p.index for p in points)
        assert len({p.index for p in together}) == len(points)
        for a, b in itertools.combinations(shards, 2):
            assert not {p.index for p in a} & {p.index for p in b}
        sizes = [len(part) for part in shards]
        assert max(sizes) - min(sizes) <= 1
        # the same split on every call and on every machine (a fresh read of the file)
        for index in range(1, count + 1):
            assert shard(points, index, count) == shards[index - 1]
            assert shard(fresh, index, count) == shards[index - 1]


def test_shard_of_a_sampled_grid_holds_only_sampled_points(tmp_path):
    sweep = load(tmp_path, GRIDS["sampled"])
    sampled = {p.index for p in sweep.points()}
    assert len(sampled) == 7
    for count in (2, 3):
        for index in range(1, count + 1):
            assert {p.index for p in shard(sweep.points(), index, count)} <= sampled


# ------------------------------------------------------------------------------- bad input

def test_unknown_param_suggests_the_closest(tmp_path):
    message, path, text = sweep_error(tmp_path, """\
        name: g
        params:
          train.flip_prob: [0.5]
          loss.lambda_identty: [1, 10]
        """)
    assert_at(message, path, text, "loss.lambda_identty")
    assert "unknown param 'loss.lambda_identty'" in message
    assert "did you mean 'loss.lambda_identity'?" in message


@pytest.mark.parametrize("body", ["  loss: [1, 10]\n", "  loss:\n    lambda_identity: [1, 10]\n",
                                  "  data.synthetic: [1]\n"])
def test_a_section_is_not_a_param(tmp_path, body):
    message, path, text = sweep_error(tmp_path, "name: g\nparams:\n" + body)
    section = body.split(":")[0].strip()
    assert_at(message, path, text, section + ":")
    assert f"{section!r} is a section" in message


def test_a_scalar_is_not_a_list(tmp_path):
    message, path, text = sweep_error(tmp_path, """\
        name: g
        params:
          train.flip_prob: [0.5]
          loss.lambda_identity: 10
        """)
    assert_at(message, path, text, "loss.lambda_identity")
    assert "give a list" in message and "[10]" in message


def test_an_empty_list_empties_the_grid(tmp_path):
    message, path, text = sweep_error(tmp_path, """\
        name: g
        params:
          train.flip_prob: [0.5]
          loss.lambda_identity: []
        """)
    assert_at(message, path, text, "loss.lambda_identity")
    assert "grid is empty" in message


@pytest.mark.parametrize("text", ["name: g\n", "name: g\nparams:\n", "name: g\nparams: {}\n",
                                  "name: g\nparams: []\n", "name: g\nparams: [1, 2]\n"])
def test_no_params_is_an_empty_grid(tmp_path, text):
    message, path, written = sweep_error(tmp_path, text)
    assert "grid is empty" in message
    if "params" in text:
        assert_at(message, path, written, "params")


@pytest.mark.parametrize("values", ["[0.5, 0.5]", "[1, 1.0]", "[0.25, 0.5, 0.25]"])
def test_duplicate_values_are_refused(tmp_path, values):
    message, path, text = sweep_error(tmp_path, f"""\
        name: g
        params:
          loss.lambda_identity: [1]
          train.flip_prob: {values}
        """)
    assert_at(message, path, text, "train.flip_prob")
    assert "more than once" in message


def test_a_value_the_schema_rejects_names_its_line(tmp_path):
    message, path, text = sweep_error(tmp_path, """\
        name: g
        params:
          loss.lambda_identity: [1, 10]
          train.flip_prob: [0.5, 2.0]
        """)
    assert_at(message, path, text, "train.flip_prob")
    assert "train.flip_prob = 2.0 is not valid" in message
    assert "<= 1" in message


@pytest.mark.parametrize(("key", "values", "bad"), [
    ("model.sphere", "[true, 1]", "1"),
    ("loss.objective", "[flow_matching, diffusion]", "diffusion"),
    ("train.epochs", "[1, 2.5]", "2.5"),
    ("data.attributes", "[[Smiling, Young], [Smiling, Hat]]", "Hat"),
    ("train.flip_prob", "[null]", "null"),
])
def test_other_schema_rejections(tmp_path, key, values, bad):
    message, path, text = sweep_error(tmp_path, f"name: g\nparams:\n  {key}: {values}\n")
    assert_at(message, path, text, key)
    assert f"{key} = " in message and bad in message


def test_a_grid_point_that_breaks_a_cross_field_rule(tmp_path):
    message, path, _ = sweep_error(tmp_path, """\
        name: g
        params:
          train.max_flips: [2, 5]
          data.attributes: [[Smiling, Young, Male, Eyeglasses, Mustache], [Smiling, Young]]
        """)
    assert "grid point g-mf5-attributesSmiling+Young is not a valid params file" in message
    assert "train.max_flips" in message


def test_select_split_test_is_refused(tmp_path):
    message, path, text = sweep_error(tmp_path, """\
        name: g
        params:
          train.flip_prob: [0.5]
        select:
          split: test
        """)
    assert_at(message, path, text, "split: test")
    assert "val only" in message and "test" in message


def test_unknown_metric_suggests_the_closest(tmp_path):
    message, path, text = sweep_error(tmp_path, """\
        name: g
        params:
          train.flip_prob: [0.5]
        select:
          metric: counterfactual_relative_eror
        """)
    assert_at(message, path, text, "metric:")
    assert "did you mean 'counterfactual_relative_error'?" in message
    for metric in SELECTABLE:
        assert metric in message


@pytest.mark.parametrize("order", ["best", "ascending", "MIN", "null"])
def test_bad_order(tmp_path, order):
    message, path, text = sweep_error(tmp_path, f"""\
        name: g
        params:
          train.flip_prob: [0.5]
        select:
          metric: counterfactual_relative_error
          order: {order}
        """)
    assert_at(message, path, text, "order:")
    assert "expected min or max" in message


def test_unknown_select_key(tmp_path):
    message, path, text = sweep_error(tmp_path, """\
        name: g
        params:
          train.flip_prob: [0.5]
        select:
          ordr: min
        """)
    assert_at(message, path, text, "ordr")
    assert "did you mean 'order'?" in message


def test_select_must_be_a_mapping(tmp_path):
    message, path, text = sweep_error(tmp_path, """\
        name: g
        params:
          train.flip_prob: [0.5]
        select: val
        """)
    assert_at(message, path, text, "select")
    assert "mapping" in message


@pytest.mark.parametrize("sample", ["0", "-1", "true", "false", "1.5", "ten", "[3]"])
def test_bad_sample(tmp_path, sample):
    message, path, text = sweep_error(tmp_path, BIG + f"sample: {sample}\n")
    assert_at(message, path, text, "sample:")
    assert "whole number >= 1" in message


@pytest.mark.parametrize("seed", ["-1", "true", "0.5", "x", "null"])
def test_bad_seed(tmp_path, seed):
    message, path, text = sweep_error(tmp_path, BIG + f"seed: {seed}\n")
    assert_at(message, path, text, "seed:")
    assert "whole number >= 0" in message


@pytest.mark.parametrize(("key", "suggestion"), [("sampel", "sample"), ("parms", "params"),
                                                 ("selcet", "select"), ("nmae", "name")])
def test_unknown_top_level_key_suggests_the_closest(tmp_path, key, suggestion):
    message, path, text = sweep_error(tmp_path, BIG + f"{key}: 1\n")
    assert_at(message, path, text, key)
    assert f"did you mean {suggestion!r}?" in message


@pytest.mark.parametrize(("text", "line"), [
    ("name: g\nparams:\n  loss.lambda_identity: [1, 2\n  train.flip_prob: [0.5]\n", 4),
    ("name: g\nparams:\n  loss.lambda_identity: [1]\n   train.flip_prob: [0.5]\n", 4),
    ("name: g\nparams: {\n", 3),
])
def test_invalid_yaml_names_the_line(tmp_path, text, line):
    message, path, _ = sweep_error(tmp_path, text)
    assert f"{path}:{line}: not valid YAML" in message


def test_duplicate_key_names_the_line(tmp_path):
    message, path, _ = sweep_error(tmp_path, BIG + "seed: 0\nseed: 1\n")
    assert f"{path}:7: duplicate key 'seed'" in message


@pytest.mark.parametrize("text", ["- params\n", "just text\n", "3\n", ""])
def test_a_sweep_file_is_a_mapping(tmp_path, text):
    message, _, _ = sweep_error(tmp_path, text)
    assert "mapping" in message


@pytest.mark.parametrize("name", ['"a/b"', '"a b"', '""', '" "', '"x."', '".x"', '"-x"', "3",
                                  "null", '"a..b"', '"x.lock"', '"a:b"'])
def test_bad_names_are_refused(tmp_path, name):
    message, path, text = sweep_error(tmp_path, f"name: {name}\nparams:\n"
                                                "  train.flip_prob: [0.5]\n")
    assert_at(message, path, text, "name:")
    assert "name " in message and "non-empty word" in message


def test_a_bad_file_name_is_refused_without_a_name(tmp_path):
    message, path, _ = sweep_error(tmp_path, "params:\n  train.flip_prob: [0.5]\n",
                                   filename="my sweep.yaml")
    assert "'my sweep'" in message


def test_missing_files(tmp_path):
    with pytest.raises(ConfigError, match="sweep file not found"):
        load_sweep(tmp_path / "nope.yaml", PARAMS)
    path = write(tmp_path, "name: g\nparams:\n  train.flip_prob: [0.5]\n")
    with pytest.raises(ConfigError, match="params file not found"):
        load_sweep(path, tmp_path / "params.yaml")


def test_errors_are_user_errors():
    assert issubclass(ConfigError, FclfError)


# ------------------------------------------------------------------------------- selection

def test_select_defaults(tmp_path):
    sweep = load(tmp_path, THREE_KEYS)
    assert sweep.selection == Selection("val", "rule", "rule") and sweep.selection.is_rule


def test_the_rule_takes_no_order(tmp_path):
    with pytest.raises(ConfigError, match="select.order does not apply to metric: rule"):
        load(tmp_path, THREE_KEYS + "select:\n  metric: rule\n  order: min\n")


@pytest.mark.parametrize(("metric", "order"), list(SELECTABLE.items()))
def test_select_order_defaults_to_the_metric_direction(tmp_path, metric, order):
    sweep = load(tmp_path, THREE_KEYS + f"select:\n  metric: {metric}\n")
    assert sweep.selection == Selection("val", metric, order)


def test_flip_success_defaults_to_max_and_order_can_be_given(tmp_path):
    sweep = load(tmp_path, THREE_KEYS + "select:\n  metric: flip_success_linear\n")
    assert sweep.selection.order == "max"
    sweep = load(tmp_path, THREE_KEYS + "select:\n  split: val\n  metric: flip_success_linear\n"
                                        "  order: min\n")
    assert sweep.selection == Selection("val", "flip_success_linear", "min")


def test_the_shipped_example_sweep_and_the_documented_one_agree_and_load() -> None:
    import re

    root = PARAMS.parent
    shipped = load_sweep(root / "sweeps" / "identity.yaml", PARAMS)
    section = (root / "docs" / "sweeps.md").read_text()
    shown = yaml.safe_load(re.search(r"```yaml\n(.*?)```", section, re.S).group(1))
    assert shown["params"] == shipped.params and shown["name"] == shipped.name
    assert [p.name for p in shipped.points()][:2] == ["identity-li0-fp0.25", "identity-li0-fp0.5"]
    assert shipped.grid_size == 8
