"""The model's own source reader, and the model file: reader and horizon travel with the weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression

from fclf.atomic import torch_save
from fclf.config import FlowConfig, ModelConfig
from fclf.errors import FclfError
from fclf.model.field import build_field
from fclf.model.model_io import edit_function, load_model, recorded_flow, save_model
from fclf.train.reader_fit import fit_source_reader

DIM, K = 12, 3


def labelled(n: int = 600, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    normals = torch.randn(K, DIM, generator=gen)
    z = torch.nn.functional.normalize(torch.randn(n, DIM, generator=gen) + 2.0, dim=-1)
    logits = (z - z.mean(0)) @ normals.T * 8 + 0.5 * torch.randn(n, K, generator=gen)
    return z, (logits > 0).to(torch.int8)


def test_fit_matches_sklearn_logistic_regression_with_standardised_features():
    z, y = labelled()
    weight, bias = fit_source_reader(z, y, c=1.0)
    x = z.double().numpy()
    mean, scale = x.mean(0), x.std(0)
    for j in range(K):
        model = LogisticRegression(C=1.0, max_iter=5000, tol=1e-10).fit((x - mean) / scale,
                                                                          y[:, j].numpy())
        w = model.coef_[0] / scale
        b = model.intercept_[0] - w @ mean
        np.testing.assert_allclose(weight[j].double().numpy(), w, rtol=2e-3, atol=2e-3)
        assert float(bias[j]) == pytest.approx(b, rel=2e-3, abs=2e-3)


def test_reader_reads_and_an_unfitted_reader_reads_zeros():
    z, y = labelled()
    field = build_field(DIM, K, ModelConfig(hidden_dim=16, attribute_embed_dim=4))
    assert torch.equal(field.reader.read(z), torch.zeros(len(z), K))
    field.reader.set(*fit_source_reader(z, y))
    assert (field.reader.read(z) == y.float()).float().mean() > 0.9
    with pytest.raises(ValueError, match="do not fit"):
        field.reader.set(torch.zeros(K, DIM + 1), torch.zeros(K))


@pytest.fixture
def saved(tmp_path):
    z, y = labelled()
    config = ModelConfig(hidden_dim=16, attribute_embed_dim=4, init_scale=0.5)
    torch.manual_seed(0)
    field = build_field(DIM, K, config)
    field.reader.set(*fit_source_reader(z, y))
    flow = FlowConfig(num_steps=4, step_size=0.25, integrator="midpoint")
    path = tmp_path / "model.pt"
    save_model(path, field, config, ["Smiling", "Young", "Male"], flow=flow)
    return path, field, z


def test_model_file_carries_the_reader_and_the_horizon(saved):
    path, field, z = saved
    loaded, config, record = load_model(path)
    assert recorded_flow(record) == FlowConfig(num_steps=4, step_size=0.25, integrator="midpoint")
    assert bool(loaded.reader.fitted)
    assert torch.equal(loaded.reader.read(z), field.reader.read(z))
    flow = recorded_flow(record)
    traj = edit_function(loaded, config, flow.num_steps, flow.step_size,
                         integrator=flow.integrator)(z[:5].numpy(), np.ones((5, K), np.float32))
    assert traj.shape == (5, 5, DIM)


def test_a_no_op_edit_does_not_move_at_all(saved):
    """targets == the reader's reading: delta = 0, v = 0, the path stays on the source."""
    path, _, z = saved
    field, config, _ = load_model(path)
    edit = edit_function(field, config, 10, 0.1)
    own = field.reader.read(z).numpy()
    traj = edit(z.numpy(), own)
    assert np.array_equal(traj, np.broadcast_to(z.numpy(), traj.shape))
    # a real edit moves; giving the sources explicitly decides what changes
    target = own.copy()
    target[:, 0] = 1 - target[:, 0]
    assert (np.linalg.norm(edit(z.numpy(), target)[-1] - z.numpy(), axis=1) > 0).all()
    given = edit(z.numpy(), target, sources=target)
    assert np.array_equal(given[-1], z.numpy())


def test_old_model_files_are_refused_with_a_hint(tmp_path):
    torch_save({"format": 1, "state_dict": {}}, tmp_path / "old.pt")
    with pytest.raises(FclfError, match="older fclf: retrain"):
        load_model(tmp_path / "old.pt")
