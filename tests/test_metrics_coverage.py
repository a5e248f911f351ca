import numpy as np
import pytest
from scipy.spatial.distance import cdist

from fclf.evaluate.metrics import coverage, density_coverage


@pytest.fixture(params=["float32", "bf16", "bf16 redone in float32"])
def cross_path(request, monkeypatch):
    """Each way the edit-to-ball test can be computed; all must agree exactly."""
    monkeypatch.setattr(coverage, "USE_BF16", request.param != "float32")
    if request.param == "bf16 redone in float32":
        monkeypatch.setattr(coverage._BF16Cross, "MAX_AMBIGUOUS", -1.0)
    return request.param


def _brute(real, real_codes, fake, fake_codes, k):
    """Naeem et al.'s definitions, per code, in float64 with full distance matrices."""
    balls = covered = n_real = n_fake = 0
    for code in np.unique(fake_codes):
        r = real[real_codes == code].astype(np.float64)
        f = fake[fake_codes == code].astype(np.float64)
        if len(r) < k + 1:
            continue
        d = cdist(r, r)
        np.fill_diagonal(d, np.inf)
        radii = np.sort(d, axis=1)[:, k - 1]
        inside = cdist(f, r) < radii[None, :]
        balls += inside.sum()
        covered += inside.any(axis=0).sum()
        n_real += len(r)
        n_fake += len(f)
    return {
        "density": balls / (k * n_fake) if n_fake else None,
        "coverage": covered / n_real if n_real else None,
        "fraction_scored": n_fake / len(fake),
    }


@pytest.mark.parametrize(
    ("n_real", "n_fake", "dim", "k", "block"),
    [(200, 150, 8, 5, 32), (500, 700, 16, 3, 64), (300, 300, 32, 5, 2048), (97, 51, 5, 1, 16)],
)
def test_matches_brute_force(n_real, n_fake, dim, k, block, cross_path):
    rng = np.random.default_rng(n_real + k)
    real = (rng.standard_normal((n_real, dim)) + 5).astype(np.float32)
    fake = (1.1 * rng.standard_normal((n_fake, dim)) + 5).astype(np.float32)
    # fake code 4 has no reals
    real_codes, fake_codes = rng.integers(0, 4, n_real), rng.integers(0, 5, n_fake)
    got = density_coverage(real, real_codes, fake, fake_codes, k=k, block_size=block)
    expected = _brute(real, real_codes, fake, fake_codes, k)
    assert got == pytest.approx(expected, abs=1e-12)
    assert got["fraction_scored"] < 1


def test_a_fresh_sample_has_coverage_one_minus_half_to_the_k_and_density_one():
    rng = np.random.default_rng(0)
    real = rng.standard_normal((3000, 16)).astype(np.float32)
    fake = rng.standard_normal((3000, 16)).astype(np.float32)
    codes = np.zeros(3000)
    for k in (3, 5):
        got = density_coverage(real, codes, fake, codes, k=k, block_size=512)
        assert got["coverage"] == pytest.approx(1 - 0.5**k, abs=0.02)
        assert got["density"] == pytest.approx(1.0, abs=0.06)
        assert got["fraction_scored"] == 1.0


def test_fakes_piled_on_one_real_point_cover_almost_nothing():
    rng = np.random.default_rng(1)
    real = rng.standard_normal((500, 16)).astype(np.float32)
    fake = np.repeat(real[:1], 400, axis=0)
    codes_r, codes_f = np.zeros(500), np.zeros(400)
    got = density_coverage(real, codes_r, fake, codes_f, k=5)
    # covered: the point itself and the reals that count it among their 4 nearest (as
    # the 5th it sits exactly on the ball's boundary, which is outside)
    d = cdist(real, real)
    np.fill_diagonal(d, np.inf)
    reverse_neighbours = (np.argsort(d, axis=1)[:, :4] == 0).sum()
    assert got["coverage"] == (1 + reverse_neighbours) / 500
    assert got["coverage"] < 0.1
    assert got == pytest.approx(_brute(real, codes_r, fake, codes_f, 5))


def test_far_away_fakes_score_zero():
    rng = np.random.default_rng(2)
    real = rng.standard_normal((400, 16)).astype(np.float32)
    fake = (rng.standard_normal((400, 16)) + 50).astype(np.float32)
    got = density_coverage(real, np.zeros(400), fake, np.zeros(400), k=5)
    assert got == {"density": 0.0, "coverage": 0.0, "fraction_scored": 1.0}


def test_codes_without_enough_reals_are_not_scored():
    rng = np.random.default_rng(3)
    real = rng.standard_normal((20, 4)).astype(np.float32)
    fake = rng.standard_normal((10, 4)).astype(np.float32)
    real_codes = np.array([0] * 15 + [1] * 5)
    fake_codes = np.array([0] * 6 + [1] * 4)
    got = density_coverage(real, real_codes, fake, fake_codes, k=5)  # code 1 needs 6 reals
    assert got["fraction_scored"] == 0.6
    assert got == pytest.approx(_brute(real, real_codes, fake, fake_codes, 5))
    none = density_coverage(real, real_codes, fake, np.full(10, 1), k=5)
    assert none == {"density": None, "coverage": None, "fraction_scored": 0.0}


def test_duplicate_reals_have_empty_balls_even_in_float32(cross_path):
    # 6 copies of one real: its radius is exactly 0, so nothing lies strictly inside
    rng = np.random.default_rng(4)
    point = rng.standard_normal((1, 32)).astype(np.float32) + 3
    real = np.concatenate([np.repeat(point, 6, axis=0), rng.standard_normal((30, 32)) + 3])
    real = real.astype(np.float32)
    fake = np.repeat(point, 5, axis=0)
    codes_r, codes_f = np.zeros(len(real)), np.zeros(5)
    got = density_coverage(real, codes_r, fake, codes_f, k=5)
    assert got == pytest.approx(_brute(real, codes_r, fake, codes_f, 5))


def test_edits_a_hair_inside_or_outside_a_ball_are_resolved_exactly(cross_path):
    # bf16 cannot tell these apart; the float64 recheck (or float32 block) must
    rng = np.random.default_rng(6)
    real = rng.standard_normal((60, 8))
    d = cdist(real, real)
    np.fill_diagonal(d, np.inf)
    radii = np.sort(d, axis=1)[:, 4]
    direction = rng.standard_normal((60, 8))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    fake = np.concatenate(
        [
            real + (1 - 1e-4) * radii[:, None] * direction,
            real + (1 + 1e-4) * radii[:, None] * direction,
        ]
    )
    real, fake = real.astype(np.float32), fake.astype(np.float32)
    codes_r, codes_f = np.zeros(60), np.zeros(120)
    got = density_coverage(real, codes_r, fake, codes_f, k=5, block_size=32)
    assert got == pytest.approx(_brute(real, codes_r, fake, codes_f, 5), abs=1e-12)


def test_translation_invariant_far_from_the_origin():
    rng = np.random.default_rng(5)
    real = rng.standard_normal((300, 16))
    fake = rng.standard_normal((300, 16))
    codes_r, codes_f = rng.integers(0, 2, 300), rng.integers(0, 2, 300)
    near = density_coverage(real.astype(np.float32), codes_r, fake.astype(np.float32), codes_f)
    shift = 1000.0  # float32 keeps ~1e-4 absolute here; distances are O(1)
    far = density_coverage(
        (real + shift).astype(np.float32), codes_r, (fake + shift).astype(np.float32), codes_f
    )
    assert far["density"] == pytest.approx(near["density"], abs=0.01)
    assert far["coverage"] == pytest.approx(near["coverage"], abs=0.01)


def test_bad_inputs():
    x = np.zeros((10, 3), np.float32)
    with pytest.raises(ValueError):
        density_coverage(x, np.zeros(9), x, np.zeros(10))
    with pytest.raises(ValueError):
        density_coverage(x, np.zeros(10), x, np.zeros(10), k=0)
