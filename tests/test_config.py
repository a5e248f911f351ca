"""The params schema: params.yaml is the defaults; every bad file fails readably."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from fclf.config import Config, describe_schema, load_config, parse_config
from fclf.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]
HEADER = "# a params file\n\n"  # pushes keys down so line numbers are not trivially 1


def write(tmp_path: Path, text: str, name: str = "params.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def error_of(path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert "\n" not in message, "errors are one line"
    return message


def leaf_keys(node: dict, prefix: str = "") -> set[str]:
    keys = set()
    for key, value in node.items():
        dotted = f"{prefix}.{key}" if prefix else key
        # a mapping is a section, but an empty one a mapping-valued leaf (data.synthetic.rates)
        keys |= leaf_keys(value, dotted) if isinstance(value, dict) and value else {dotted}
    return keys


# -- the shipped params file ------------------------------------------------------------


def test_params_yaml_is_exactly_the_defaults():
    assert load_config(REPO / "params.yaml") == Config()


def test_params_yaml_lists_every_key_of_the_schema():
    raw = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
    assert leaf_keys(raw) == {key for key, _, _ in describe_schema()}


def test_describe_schema_defaults_match_config():
    config = Config()
    for key, default, doc in describe_schema():
        value = config
        for part in key.split("."):
            value = getattr(value, part)
        assert value == default, key
        assert doc, f"{key} has no documentation"


def test_missing_keys_and_empty_sections_take_defaults(tmp_path):
    path = write(tmp_path, "data:\n  seed: 3\nloss:\ntrain: {}\n")
    config = load_config(path)
    assert config.data.seed == 3
    assert config.loss == Config().loss
    assert config.train == Config().train
    assert load_config(write(tmp_path, "", "empty.yaml")) == Config()


def test_optional_values_accept_null(tmp_path):
    path = write(tmp_path, "embed:\n  model_path: null\neval:\n  num_samples: null\n")
    config = load_config(path)
    assert config.embed.model_path is None
    assert config.eval.num_samples is None


def test_integers_are_accepted_for_floats_and_exponents_without_dot(tmp_path):
    # PyYAML (YAML 1.1) reads 1e-4 as a string; the loader reads it as a number.
    path = write(tmp_path, "train:\n  learning_rate: 1e-4\n  grad_clip: 2\nloss:\n"
                           "  temperature: 7.0E-2\n")
    config = load_config(path)
    assert config.train.learning_rate == pytest.approx(1e-4)
    assert isinstance(config.train.grad_clip, float) and config.train.grad_clip == 2.0
    assert config.loss.temperature == pytest.approx(0.07)


def test_parse_config_accepts_a_mapping_and_names_a_default_source():
    config = parse_config({"model": {"hidden_dim": 64}})
    assert config.model.hidden_dim == 64
    with pytest.raises(ConfigError, match=r"^<params>: model.hidden_dim = 0 "):
        parse_config({"model": {"hidden_dim": 0}})


def test_config_is_frozen():
    with pytest.raises(AttributeError):
        Config().train.epochs = 3  # type: ignore[misc]


# -- unknown keys -----------------------------------------------------------------------


def test_unknown_key_names_key_section_line_and_closest_key(tmp_path):
    path = write(tmp_path, HEADER + "loss:\n  temperature: 0.1\n  lamda_identity: 0.2\n")
    message = error_of(path)
    assert message.startswith(f"{path}:5: ")
    assert "'loss.lamda_identity'" in message
    assert "section 'loss'" in message
    assert "did you mean 'lambda_identity'" in message
    assert "lambda_contrastive" in message  # lists the valid keys


def test_unknown_nested_key(tmp_path):
    path = write(tmp_path, "data:\n  synthetic:\n    dimm: 64\n")
    message = error_of(path)
    assert message.startswith(f"{path}:3: ")
    assert "'data.synthetic.dimm'" in message and "did you mean 'dim'" in message


def test_unknown_section(tmp_path):
    path = write(tmp_path, HEADER + "data:\n  seed: 1\nlosses:\n  lambda_div: 0.1\n")
    message = error_of(path)
    assert message.startswith(f"{path}:5: ")
    assert "'losses'" in message and "top level" in message
    assert "did you mean 'loss'" in message


def test_unknown_key_without_close_match_has_no_suggestion(tmp_path):
    message = error_of(write(tmp_path, "train:\n  zzzzzz: 1\n"))
    assert "'train.zzzzzz'" in message and "did you mean" not in message


# -- bad values -------------------------------------------------------------------------

BAD_VALUES = [
    # (section, key, YAML value, how the value is shown, what the message says is allowed)
    ("loss", "lambda_curl", "-0.5", "-0.5", ">= 0"),
    ("loss", "lambda_identity", "-1", "-1.0", ">= 0"),
    ("train", "flip_prob", "1.5", "1.5", ">= 0 and <= 1"),
    ("gate", "min_preservation", "-0.1", "-0.1", ">= 0 and <= 1"),
    ("train", "batch_size", "0", "0", ">= 2"),
    ("embed", "batch_size", "0", "0", ">= 1"),
    ("loss", "temperature", "0", "0.0", "> 0"),
    ("loss", "temperature", ".inf", "inf", "a finite number"),
    ("train", "epochs", "ten", "'ten'", "an integer"),
    ("train", "epochs", "2.5", "2.5", "an integer"),
    ("train", "epochs", "true", "True", "an integer"),
    ("train", "learning_rate", "fast", "'fast'", "a number"),
    ("model", "sphere", "1", "1", "true or false"),
    ("data", "celeba_root", "12", "12", "a string"),
    ("eval", "transfer_mode", "singel", "'singel'", "one of 'single', 'multi'"),
    ("flow", "integrator", "rk5", "'rk5'", "one of 'euler', 'midpoint', 'rk4'"),
    ("flow", "num_steps", "0", "0", ">= 1"),
    ("flow", "step_size", "0", "0.0", "> 0"),
    ("loss", "objective", "gan", "'gan'", "one of 'contrastive', 'flow_matching'"),
    ("loss", "positives", "0", "0", ">= 1"),
    ("train", "checkpoint_gradients", "yes please", "'yes please'", "true or false"),
    ("train", "epochs", "null", "null", "null is not allowed"),
    ("data", "source", "null", "null", "null is not allowed"),
    ("data", "attributes", "[]", "[]", "at least 1 item"),
    ("data", "attributes", "Male", "'Male'", "a list of names"),
    ("data", "attributes", "[Male, Young, Male]", "['Male', 'Young', 'Male']",
     "distinct names ('Male' repeated)"),
]


@pytest.mark.parametrize(("section", "key", "raw", "shown", "allowed"), BAD_VALUES)
def test_bad_value_names_key_value_line_and_what_is_allowed(
    tmp_path, section, key, raw, shown, allowed
):
    path = write(tmp_path, HEADER + f"{section}:\n  {key}: {raw}\n")
    message = error_of(path)
    assert message.startswith(f"{path}:4: {section}.{key} = {shown} is invalid; expected ")
    assert allowed in message


def test_unknown_attribute_name_suggests_the_closest(tmp_path):
    path = write(tmp_path, HEADER + "data:\n  attributes: [Male, Smilling]\n")
    message = error_of(path)
    assert message.startswith(f"{path}:4: data.attributes")
    assert "'Smilling'" in message and "did you mean 'Smiling'" in message
    assert "CelebA attribute names" in message


def test_section_that_is_not_a_mapping(tmp_path):
    path = write(tmp_path, "train: 5\n")
    message = error_of(path)
    assert message.startswith(f"{path}:1: train must be a mapping")
    assert "5" in message


def test_top_level_that_is_not_a_mapping(tmp_path):
    message = error_of(write(tmp_path, "- data\n- train\n"))
    assert "top level must be a mapping" in message


# -- cross-field rules ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("data:\n  attributes: [Male]\ntrain:\n  max_flips: 2\n", 4, "train.max_flips = 2"),
        ("data:\n  attributes: [Male, Young]\neval:\n  transfer_mode: multi\n", 4,
         "at least 3 data.attributes"),
        ("data:\n  synthetic:\n    cone_cosine: 0.8\n    same_identity_cosine: 0.7\n", 4,
         "must exceed data.synthetic.cone_cosine"),
        ("data:\n  source: celeba\n", None, "embed.model_path is not set"),
        ("data:\n  attributes: [Male, Young, Smiling, Eyeglasses, Mustache, Bald, Bangs]\n"
         "  synthetic:\n    dim: 8\n    rates: {Bald: 0.1, Bangs: 0.1}\n", 4,
         "data.synthetic.dim = 8"),
        ("data:\n  synthetic:\n    dim: 64\n    attribute_context: 0\nmodel:\n"
         "  frozen_identity_rank: 50\n  frozen_nuisance_rank: 4\n", 6,
         "= 54 do not fit data.synthetic.dim = 64 with 5 attributes: at most 53"),
    ],
)
def test_cross_field_rules(tmp_path, text, line, fragment):
    path = write(tmp_path, text)
    message = error_of(path)
    assert message.startswith(f"{path}:{line}: " if line else f"{path}: ")
    assert fragment in message


SYN_ATTRS = "data:\n  attributes: [Male, Smiling, Bald]\n"


def test_synthetic_source_refuses_uncalibrated_attributes(tmp_path):
    path = write(tmp_path, "data:\n  source: synthetic\n  attributes: [Smiling, Bald]\n")
    message = error_of(path)
    assert message.startswith(f"{path}:3: data.attributes ['Bald'] have no calibration")
    assert "knows Male, Young, Smiling, Eyeglasses, Mustache" in message
    assert "data.synthetic.rates" in message


def test_synthetic_rates_make_uncalibrated_attributes_valid(tmp_path):
    config = load_config(write(tmp_path, SYN_ATTRS + "  synthetic:\n    rates: {Bald: 0.02}\n"))
    assert config.data.synthetic.rates == {"Bald": 0.02}
    celeba = ("data:\n  source: celeba\n  attributes: [Male, Bald]\n"
              "embed:\n  model_path: /models/clip\n")
    assert load_config(write(tmp_path, celeba)).data.attributes == ["Male", "Bald"]


@pytest.mark.parametrize(
    ("rates", "line", "fragment"),
    [
        ("{Bald: 1.0}", 4, "data.synthetic.rates.Bald = 1.0 is invalid; expected > 0 and < 1"),
        ("{Bald: 0}", 4, "data.synthetic.rates.Bald = 0 is invalid; expected > 0 and < 1"),
        ("{Bald: high}", 4, "data.synthetic.rates.Bald = 'high' is invalid; expected a number"),
        ("[Bald]", 4, "data.synthetic.rates = ['Bald'] is invalid; expected a mapping"),
        ("{Bald: 0.1, Smiling: 0.5}", 4, "Smiling is calibrated already"),
        ("{Bald: 0.1, Bangs: 0.5}", 4, "'Bangs' is not in data.attributes"),
    ],
)
def test_synthetic_rates_are_checked(tmp_path, rates, line, fragment):
    path = write(tmp_path, SYN_ATTRS + f"  synthetic:\n    rates: {rates}\n")
    message = error_of(path)
    assert message.startswith(f"{path}:{line}: "), message
    assert fragment in message


def test_small_dim_is_fine_for_celeba_source(tmp_path):
    text = ("data:\n  source: celeba\n  attributes: [Male, Young, Smiling, Bald, Bangs, Big_Lips]"
            "\n  synthetic:\n    dim: 8\nembed:\n  model_path: /models/clip\n")
    assert load_config(write(tmp_path, text)).data.synthetic.dim == 8


# -- unreadable files -------------------------------------------------------------------


def test_invalid_yaml_names_file_and_line(tmp_path):
    path = write(tmp_path, HEADER + "train:\n  epochs: [1, 2\n  seed: 0\n")
    message = error_of(path)
    assert message.startswith(f"{path}:")
    assert "not valid YAML" in message
    line = int(message.split(":")[1])
    assert 4 <= line <= 6


def test_duplicate_key_names_key_and_line(tmp_path):
    path = write(tmp_path, HEADER + "train:\n  epochs: 1\n  seed: 2\n  epochs: 3\n")
    message = error_of(path)
    assert message.startswith(f"{path}:6: ")
    assert "duplicate key 'train.epochs'" in message


def test_duplicate_section(tmp_path):
    path = write(tmp_path, "train:\n  epochs: 1\nloss: {}\ntrain:\n  seed: 1\n")
    assert error_of(path).startswith(f"{path}:4: duplicate key 'train'")


def test_missing_file(tmp_path):
    message = error_of(tmp_path / "nope.yaml")
    assert "nope.yaml" in message and "not found" in message


def test_directory_and_binary_files_are_config_errors(tmp_path):
    (tmp_path / "dir.yaml").mkdir()
    assert "dir.yaml" in error_of(tmp_path / "dir.yaml")
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"\xff\xfe\x00\x01")
    assert "bin.yaml" in error_of(binary)


def test_library_defaults_match_the_params_schema():
    """fclf's ObjectiveWeights/TrainSettings defaults (used by benches and library
    callers) are the same numbers as the params defaults."""
    from fclf.config import Config
    from fclf.train.loop import TrainSettings
    from fclf.train.objectives import ObjectiveWeights
    from fclf.train.run_definition import objective_weights, train_settings

    assert ObjectiveWeights() == objective_weights(Config())
    assert TrainSettings() == train_settings(Config())


@pytest.mark.parametrize(("section", "key", "moved_to"), [
    ("train", "alpha", "flow.step_size"), ("train", "flow_steps", "flow.num_steps"),
    ("model", "integrator", "flow.integrator"),
])
def test_keys_replaced_by_the_flow_section_are_unknown(tmp_path, section, key, moved_to):
    """One horizon: the old training-only step keys are gone (the `flow` section holds it)."""
    message = error_of(write(tmp_path, HEADER + f"{section}:\n  {key}: 1\n"))
    assert f"unknown key '{section}.{key}'" in message
    assert Config().flow.num_steps * Config().flow.step_size == pytest.approx(1.0)
    assert hasattr(Config().flow, moved_to.split(".")[1])


def test_the_collapsed_preset_of_the_readme_still_parses(tmp_path):
    text = ("loss:\n  lambda_identity: 0\ntrain:\n  flip_prob: 0\n  learning_rate: 0.0001\n"
            "model:\n  sphere: false\n")
    config = load_config(write(tmp_path, text))
    assert config.loss.lambda_identity == 0 and not config.model.sphere


def test_protocol_and_collapse_defaults_equal_the_params_schema() -> None:
    import dataclasses
    import inspect

    from fclf.config import EvalConfig
    from fclf.evaluate.metrics import collapse_verdict
    from fclf.evaluate.protocol import ProtocolSettings

    schema = dataclasses.asdict(EvalConfig())
    library = dataclasses.asdict(ProtocolSettings())
    for key, value in schema.items():
        assert library[key] == value, key
    thresholds = ProtocolSettings().thresholds
    for name, parameter in inspect.signature(collapse_verdict).parameters.items():
        if name in thresholds:
            assert parameter.default == thresholds[name], name
