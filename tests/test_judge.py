import json
import time
from functools import lru_cache

import numpy as np
import pytest
import torch

from fclf.errors import DataError
from fclf.evaluate.judge import Judge, MLPReader
from fclf.evaluate.probes import AttributeProbes

NAMES = ("Rare", "Common")


def _balanced_accuracy(pred: np.ndarray, truth: np.ndarray) -> tuple[float, float, float]:
    """(balanced accuracy, TPR, TNR) of one column."""
    tpr = float((pred[truth == 1] == 1).mean())
    tnr = float((pred[truth == 0] == 0).mean())
    return (tpr + tnr) / 2, tpr, tnr


@lru_cache(maxsize=1)
def _rare_problem():
    """A 4 % attribute 2 sigma off along one axis (Bayes-balanced ~0.84), plus a common one."""
    rng = np.random.default_rng(0)
    n, d = 8000, 32
    y = np.stack([rng.random(n) < 0.04, rng.random(n) < 0.5], axis=1).astype(np.int8)
    x = rng.standard_normal((n, d))
    x[:, 0] += 2.0 * y[:, 0]
    x[:, 1] += 2.0 * y[:, 1]
    x = x.astype(np.float32)
    half = n // 2
    return (x[:half], y[:half]), (x[half:], y[half:])


@lru_cache(maxsize=1)
def _rare_judge() -> Judge:
    (x, y), _ = _rare_problem()
    return Judge.fit(x, y, NAMES, seed=0)


@lru_cache(maxsize=1)
def _xor_problem():
    """Attribute 0 = [x0 * x1 > 0] (no linear reader beats chance); attribute 1 linear."""
    rng = np.random.default_rng(1)
    n, d = 10000, 8
    x = rng.standard_normal((n, d)).astype(np.float32)
    y = np.stack([x[:, 0] * x[:, 1] > 0, x[:, 2] > 0.3], axis=1).astype(np.int8)
    return (x[:6000], y[:6000]), (x[6000:], y[6000:])


@lru_cache(maxsize=1)
def _xor_judge() -> Judge:
    (x, y), _ = _xor_problem()
    return Judge.fit(x, y, ("Xor", "Linear"), seed=0)


def test_kinds_and_readings():
    judge = _rare_judge()
    _, (x, _) = _rare_problem()
    assert judge.kinds == ("linear", "mlp")
    assert judge.attribute_names == NAMES
    readings = judge.read(x)
    assert set(readings) == {"linear", "mlp"}
    for kind, reading in readings.items():
        assert reading.shape == (len(x), 2)
        assert reading.dtype == np.int8
        assert set(np.unique(reading)) <= {0, 1}
        reader = judge.reader(kind)
        np.testing.assert_array_equal(reading, reader.predict(x))
        np.testing.assert_array_equal(reading, (reader.logits(x) >= 0).astype(np.int8))
        np.testing.assert_array_equal(reading, (reader.predict_proba(x) >= 0.5).astype(np.int8))


def test_linear_judge_is_the_balanced_attribute_probe():
    (x, y), (xt, _) = _rare_problem()
    judge = _rare_judge()
    probes = AttributeProbes(x, y, NAMES, class_weight="balanced")
    np.testing.assert_array_equal(judge.linear.weights, probes.weights)
    np.testing.assert_array_equal(judge.linear.bias, probes.bias)
    assert judge.linear.class_weight == "balanced"
    np.testing.assert_array_equal(judge.read(xt)["linear"], probes.predict(xt))


def test_balanced_linear_judge_recalls_a_rare_attribute_that_the_plain_probe_misses():
    (x, y), (xt, yt) = _rare_problem()
    plain = AttributeProbes(x, y, NAMES).predict(xt)[:, 0]
    plain_ba, plain_tpr, _ = _balanced_accuracy(plain, yt[:, 0])
    judge_ba, judge_tpr, judge_tnr = _balanced_accuracy(_rare_judge().read(xt)["linear"][:, 0],
                                                        yt[:, 0])
    # Measured: plain TPR 0.34 / BA 0.67 (TNR 0.99); balanced TPR 0.78 / BA 0.81 (TNR 0.85);
    # MLP TPR 0.73 / BA 0.80.
    assert plain_tpr < 0.45, plain_tpr
    assert judge_tpr > plain_tpr + 0.3, (judge_tpr, plain_tpr)
    assert judge_ba > plain_ba + 0.1, (judge_ba, plain_ba)
    assert judge_tnr > 0.75, judge_tnr
    mlp_ba, mlp_tpr, _ = _balanced_accuracy(_rare_judge().read(xt)["mlp"][:, 0], yt[:, 0])
    assert mlp_tpr > plain_tpr + 0.2 and mlp_ba > plain_ba + 0.05, (mlp_ba, mlp_tpr)


def test_mlp_judge_reads_an_interaction_the_linear_judge_cannot():
    _, (xt, yt) = _xor_problem()
    readings = _xor_judge().read(xt)
    linear_ba = _balanced_accuracy(readings["linear"][:, 0], yt[:, 0])[0]
    mlp_ba = _balanced_accuracy(readings["mlp"][:, 0], yt[:, 0])[0]
    # Measured: linear 0.51, MLP 0.97.
    assert mlp_ba > 0.9, mlp_ba
    assert abs(linear_ba - 0.5) < 0.05, linear_ba
    for kind in ("linear", "mlp"):
        assert _balanced_accuracy(readings[kind][:, 1], yt[:, 1])[0] > 0.95, kind


def test_same_seed_same_judge_and_global_rng_untouched():
    (x, y), (xt, _) = _xor_problem()
    torch_state = torch.get_rng_state()
    numpy_state = np.random.get_state()
    torch.manual_seed(123)
    before = torch.rand(3)
    torch.manual_seed(123)
    with torch.no_grad():  # a caller's no_grad does not stop the fit
        again = Judge.fit(x, y, ("Xor", "Linear"), seed=0)
    assert torch.equal(torch.rand(3), before)  # the fit drew nothing from the global RNG
    torch.set_rng_state(torch_state)
    after_numpy = np.random.get_state()
    assert after_numpy[0] == numpy_state[0] and np.array_equal(after_numpy[1], numpy_state[1])

    first = _xor_judge()
    for kind in first.kinds:
        np.testing.assert_array_equal(again.read(xt)[kind], first.read(xt)[kind])
    np.testing.assert_array_equal(again.mlp.logits(xt), first.mlp.logits(xt))
    for a, b in zip(again.mlp.parameters(), first.mlp.parameters(), strict=True):
        assert torch.equal(a, b)

    other = Judge.fit(x, y, ("Xor", "Linear"), seed=1)
    assert not np.array_equal(other.mlp.logits(xt), first.mlp.logits(xt))
    np.testing.assert_array_equal(other.linear.weights, first.linear.weights)  # no randomness


def test_judge_is_frozen():
    judge = _rare_judge()
    _, (xt, _) = _rare_problem()
    before = {kind: judge.mlp.logits(xt) if kind == "mlp" else judge.linear.logits(xt)
              for kind in judge.kinds}
    for reader in (judge.linear, judge.mlp):
        assert not hasattr(reader, "fit")
    with pytest.raises(ValueError):
        judge.linear.weights[0, 0] = 1.0
    with pytest.raises(ValueError):
        judge.linear.bias[0] = 1.0
    with pytest.raises(ValueError):
        judge.mlp.mean[0] = 1.0
    with pytest.raises(ValueError):
        judge.mlp.scale[0] = 1.0
    net = judge.mlp._net
    assert not net.training
    assert all(not p.requires_grad for p in net.parameters())
    for p in judge.mlp.parameters():  # copies: changing them changes nothing
        p.add_(1.0)
    # Judge.fit builds a new judge; called through an instance it leaves the instance alone.
    rng = np.random.default_rng(5)
    x_other = rng.standard_normal((400, 32)).astype(np.float32)
    y_other = (rng.random((400, 2)) < 0.5).astype(np.int8)
    new = judge.fit(x_other, y_other, NAMES, seed=3)
    assert new is not judge
    judge.read(rng.standard_normal((50, 32)).astype(np.float32))
    np.testing.assert_array_equal(judge.mlp.logits(xt), before["mlp"])
    np.testing.assert_array_equal(judge.linear.logits(xt), before["linear"])
    assert not net.training


def test_report_keys_ranges_and_values():
    judge = _rare_judge()
    _, (xt, yt) = _rare_problem()
    report = judge.report(xt, yt)
    json.dumps(report, allow_nan=False)
    assert set(report) == set(judge.kinds)
    readings = judge.read(xt)
    for kind, entry in report.items():
        assert set(entry) == {"mean_balanced_accuracy", "attributes"}
        assert tuple(entry["attributes"]) == NAMES
        scores = []
        for j, values in enumerate(entry["attributes"].values()):
            assert set(values) == {"balanced_accuracy", "tpr", "tnr"}
            for value in values.values():
                assert type(value) is float and 0.0 <= value <= 1.0
            expected = _balanced_accuracy(readings[kind][:, j], yt[:, j])
            assert values["balanced_accuracy"] == pytest.approx(expected[0])
            assert values["tpr"] == pytest.approx(expected[1])
            assert values["tnr"] == pytest.approx(expected[2])
            scores.append(values["balanced_accuracy"])
        assert type(entry["mean_balanced_accuracy"]) is float
        assert entry["mean_balanced_accuracy"] == pytest.approx(np.mean(scores))
        assert entry["mean_balanced_accuracy"] > 0.8, kind


def test_fit_rejects_bad_inputs_with_data_errors():
    (x, y), _ = _rare_problem()
    x, y = x[:500], y[:500].copy()
    with pytest.raises(DataError, match="attributes must be"):
        Judge.fit(x, y[:-1], NAMES)  # rows do not match
    with pytest.raises(DataError, match="attributes must be"):
        Judge.fit(x, y, ("Rare",))  # columns do not match names
    with pytest.raises(DataError, match="embeddings"):
        Judge.fit(x[0], y, NAMES)
    nan = x.copy()
    nan[0, 0] = np.nan
    with pytest.raises(DataError, match="finite"):
        Judge.fit(nan, y, NAMES)
    bad = y.copy()
    bad[0, 1] = 2
    with pytest.raises(DataError, match="'Common'"):
        Judge.fit(x, bad, NAMES)
    single = y.copy()
    single[:, 0] = 0
    with pytest.raises(DataError, match="'Rare'"):
        Judge.fit(x, single, NAMES)
    with pytest.raises(DataError, match="'Common'"):
        MLPReader(x, np.stack([y[:, 0], np.ones(len(y), np.int8)], axis=1), NAMES)


def test_read_and_report_check_shapes():
    judge = _rare_judge()
    _, (xt, yt) = _rare_problem()
    with pytest.raises(ValueError):
        judge.read(xt[:, :10])
    with pytest.raises(ValueError):
        judge.read(xt[0])
    with pytest.raises(DataError):
        judge.report(xt[:, :10], yt)
    with pytest.raises(DataError):
        judge.report(xt, yt[:-1])
    single = yt.copy()
    single[:, 1] = 1  # a small test split without a negative 'Common' face
    entry = judge.report(xt, single)["linear"]
    common = entry["attributes"]["Common"]
    assert common["tnr"] is None and common["balanced_accuracy"] is None
    assert common["tpr"] is not None
    others = [v["balanced_accuracy"] for n, v in entry["attributes"].items() if n != "Common"]
    assert entry["mean_balanced_accuracy"] == pytest.approx(np.mean(others))
    with pytest.raises(KeyError):
        judge.reader("svm")


def test_read_of_twenty_thousand_clip_sized_points_is_fast():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((1000, 512)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    y = (x[:, :5] > 0.02).astype(np.int8)
    judge = Judge.fit(x, y, ("a", "b", "c", "d", "e"), c=0.01, mlp_epochs=1)
    z = rng.standard_normal((20000, 512)).astype(np.float32)
    times = []
    for _ in range(3):
        start = time.perf_counter()
        readings = judge.read(z)
        times.append(time.perf_counter() - start)
    assert readings["mlp"].shape == (20000, 5)
    assert min(times) < 1.0, times
