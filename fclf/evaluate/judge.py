"""An independent judge: two frozen attribute readers fitted on a split of their own.

The probes in `fclf.evaluate.probes` are fitted on the train split, which the
methods also train on, and weigh every row alike, so a rare attribute
(Mustache, 4 % of faces) is mostly read as absent. The judge fixes both:

- the caller fits it on a `judge` split, identity-disjoint from
  train/val/test (this module only sees arrays, never files);
- both readers are class-balanced, so a rare attribute's positives count as
  much as its negatives and a reading of 1 means "more likely present than a
  balanced prior says", on a rare attribute as on a common one.

Two readers, so that an edit that fools one kind of reader does not pass:

- `linear`: one class-balanced logistic regression per attribute, i.e.
  `AttributeProbes(class_weight="balanced")` (standardised fit folded into
  read-only raw-space weights);
- `mlp`: a small multi-label MLP (d -> hidden -> hidden -> k, SiLU) trained on
  standardised features with class-balanced BCE (pos_weight = neg / pos per
  attribute), minibatch AdamW and hidden dropout, for a fixed number of epochs. Its
  randomness (initialisation, shuffling, dropout) comes from its own
  `torch.Generator`, so a fit is deterministic on CPU for a seed and the global
  RNG state is left alone.

Both are fitted once, when the judge is built (`Judge.fit` is a constructor:
it returns a new judge and never changes an existing one), and frozen after
that: read-only arrays for the linear reader, an eval-mode network whose
parameters do not require grad for the MLP.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from fclf.errors import DataError
from fclf.evaluate.probes import AttributeProbes

KINDS = ("linear", "mlp")
CHUNK = 8192  # rows read by the MLP at a time

# MLP defaults. With pos_weight ~ 20 on a rare attribute the network memorises
# its few positives (and, on ~10 images per person, their identities) within a
# few dozen epochs; hidden dropout and a short schedule keep it from doing so
# badly while leaving it enough steps to learn an interaction (XOR) that no
# linear reader can. Input dropout is left out: it hides one factor of an
# interaction and stops the MLP from learning it.
MLP_HIDDEN = 256
MLP_EPOCHS = 10
MLP_BATCH_SIZE = 256
MLP_LR = 1e-3
MLP_WEIGHT_DECAY = 1e-2
MLP_DROPOUT = 0.5


def _check_fit_inputs(
    embeddings: np.ndarray, attributes: np.ndarray, attribute_names, what: str,
    both_classes: bool = True,
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    x = np.asarray(embeddings)
    y = np.asarray(attributes)
    names = tuple(str(a) for a in attribute_names)
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise DataError(f"{what}: embeddings must be a non-empty (N, d) array, got {x.shape}")
    if not np.issubdtype(x.dtype, np.number) or not np.isfinite(x).all():
        raise DataError(f"{what}: embeddings must be finite numbers")
    if len(set(names)) != len(names) or not names:
        raise DataError(f"{what}: attribute names must be distinct and non-empty, got {names}")
    if y.ndim != 2 or y.shape != (x.shape[0], len(names)):
        raise DataError(
            f"{what}: attributes must be (N, k) = ({x.shape[0]}, {len(names)}) "
            f"(one row per embedding, one column per attribute name), got {y.shape}"
        )
    for j, name in enumerate(names):
        values = np.unique(y[:, j])
        if not np.isin(values, (0, 1)).all():
            raise DataError(f"{what}: attribute {name!r} must be 0/1, got values {values[:5]}")
        if len(values) < 2 and both_classes:
            raise DataError(
                f"{what}: attribute {name!r} has only the value {int(values[0])}; "
                "both classes are needed (to fit a balanced reader, or to score one)"
            )
    return x, y.astype(np.int8), names


class _Dropout(nn.Module):
    """Inverted dropout drawing its masks from a given generator (not the global RNG)."""

    def __init__(self, p: float, generator: torch.Generator):
        super().__init__()
        self.p = float(p)
        self.generator = generator

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = torch.rand(x.shape, generator=self.generator, dtype=x.dtype) >= self.p
        return x * keep / (1.0 - self.p)


def _linear(fan_in: int, fan_out: int, generator: torch.Generator) -> nn.Linear:
    """nn.Linear with torch's default U(-1/sqrt(fan_in), 1/sqrt(fan_in)) init, from `generator`."""
    layer = nn.utils.skip_init(nn.Linear, fan_in, fan_out)  # no draw from the global RNG
    bound = 1.0 / np.sqrt(fan_in)
    with torch.no_grad():
        layer.weight.copy_((torch.rand(layer.weight.shape, generator=generator) * 2 - 1) * bound)
        layer.bias.copy_((torch.rand(layer.bias.shape, generator=generator) * 2 - 1) * bound)
    return layer


class MLPReader:
    """Multi-label MLP reader, fitted once in the constructor and frozen."""

    def __init__(
        self,
        embeddings: np.ndarray,
        attributes: np.ndarray,
        attribute_names: tuple[str, ...] | list[str],
        *,
        seed: int = 0,
        hidden: int = MLP_HIDDEN,
        epochs: int = MLP_EPOCHS,
        batch_size: int = MLP_BATCH_SIZE,
        lr: float = MLP_LR,
        weight_decay: float = MLP_WEIGHT_DECAY,
        dropout: float = MLP_DROPOUT,
    ):
        x, y, names = _check_fit_inputs(embeddings, attributes, attribute_names, "MLP reader")
        if hidden < 1 or epochs < 1 or batch_size < 1 or lr <= 0 or weight_decay < 0:
            raise ValueError(
                "hidden, epochs, batch_size and lr must be positive, weight_decay non-negative"
            )
        if not 0.0 <= dropout < 1.0:
            raise ValueError("dropout must be in [0, 1)")
        x64 = x.astype(np.float64)
        mean = x64.mean(axis=0)
        scale = x64.std(axis=0)
        scale[scale == 0] = 1.0
        d, k = x.shape[1], len(names)

        generator = torch.Generator().manual_seed(int(seed))
        net = nn.Sequential(
            _linear(d, hidden, generator),
            nn.SiLU(),
            _Dropout(dropout, generator),
            _linear(hidden, hidden, generator),
            nn.SiLU(),
            _Dropout(dropout, generator),
            _linear(hidden, k, generator),
        )
        xs = torch.from_numpy(((x64 - mean) / scale).astype(np.float32))
        ys = torch.from_numpy(y.astype(np.float32))
        positives = ys.sum(dim=0)
        loss_fn = nn.BCEWithLogitsLoss(pos_weight=(len(ys) - positives) / positives)
        optimiser = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=weight_decay)
        net.train()
        with torch.enable_grad():  # also when the caller fits inside torch.no_grad()
            for _ in range(epochs):
                order = torch.randperm(len(xs), generator=generator)
                for start in range(0, len(xs), batch_size):
                    rows = order[start : start + batch_size]
                    optimiser.zero_grad(set_to_none=True)
                    loss_fn(net(xs[rows]), ys[rows]).backward()
                    optimiser.step()
        net.eval()
        net.requires_grad_(False)
        for module in net:
            if isinstance(module, _Dropout):
                module.generator = None  # eval mode never draws; drop the reference
        mean32 = mean.astype(np.float32)
        scale32 = scale.astype(np.float32)
        mean32.setflags(write=False)
        scale32.setflags(write=False)
        self._net = net
        self._mean = mean32
        self._scale = scale32
        self.attribute_names = names
        self.seed = int(seed)
        self.dim = d

    def state(self) -> dict:
        """What `from_state` needs: the network's parameters and the feature scaler."""
        return {"net": {k: v.clone() for k, v in self._net.state_dict().items()},
                "mean": torch.from_numpy(self._mean.copy()),
                "scale": torch.from_numpy(self._scale.copy()),
                "attribute_names": list(self.attribute_names), "seed": self.seed}

    @classmethod
    def from_state(cls, state: dict) -> MLPReader:
        """A frozen reader with saved parameters (no fitting)."""
        net_state = state["net"]
        weights = [net_state[k] for k in sorted(net_state) if k.endswith("weight")]
        hidden, d = weights[0].shape
        k = weights[-1].shape[0]
        net = nn.Sequential(nn.Linear(d, hidden), nn.SiLU(), _Dropout(0.0, None),
                            nn.Linear(hidden, hidden), nn.SiLU(), _Dropout(0.0, None),
                            nn.Linear(hidden, k))
        net.load_state_dict(net_state)
        net.eval()
        net.requires_grad_(False)
        reader = cls.__new__(cls)
        mean = np.asarray(state["mean"], np.float32).copy()
        scale = np.asarray(state["scale"], np.float32).copy()
        mean.setflags(write=False)
        scale.setflags(write=False)
        reader._net, reader._mean, reader._scale = net, mean, scale
        reader.attribute_names = tuple(state["attribute_names"])
        reader.seed, reader.dim = int(state["seed"]), d
        return reader

    @property
    def mean(self) -> np.ndarray:
        """(d,) feature means of the fit split; read-only."""
        return self._mean

    @property
    def scale(self) -> np.ndarray:
        """(d,) feature standard deviations of the fit split; read-only."""
        return self._scale

    def parameters(self) -> list[torch.Tensor]:
        """Copies of the network's parameters (changing them changes nothing)."""
        return [p.detach().clone() for p in self._net.parameters()]

    def logits(self, z: np.ndarray) -> np.ndarray:
        """(N, k) decision values in float64, read in row chunks."""
        z = np.asarray(z)
        if z.ndim != 2 or z.shape[1] != self.dim:
            raise ValueError(f"expected (N, {self.dim}) points, got {z.shape}")
        out = np.empty((len(z), len(self.attribute_names)))
        with torch.inference_mode():
            for start in range(0, len(z), CHUNK):
                rows = (np.asarray(z[start : start + CHUNK], np.float32) - self._mean) / self._scale
                out[start : start + CHUNK] = self._net(torch.from_numpy(rows)).numpy()
        return out

    def predict_proba(self, z: np.ndarray) -> np.ndarray:
        """(N, k) probability that each attribute is present (class-balanced prior)."""
        return 1.0 / (1.0 + np.exp(-self.logits(z)))

    def predict(self, z: np.ndarray) -> np.ndarray:
        """(N, k) int8 readings: 1 where prob >= 0.5 (logit >= 0)."""
        return (self.logits(z) >= 0).astype(np.int8)


def _rates(pred: np.ndarray, truth: np.ndarray) -> tuple[float | None, float | None]:
    """(TPR, TNR) of one attribute column; None for a class the points do not have."""
    pos = truth == 1
    tpr = float((pred[pos] == 1).mean()) if pos.any() else None
    tnr = float((pred[~pos] == 0).mean()) if (~pos).any() else None
    return tpr, tnr


class Judge:
    """A linear and an MLP reader of the same attributes, fitted on an independent split.

    Build one with `Judge.fit(...)`; `read(z)` gives both readings of any points,
    `report(...)` scores both readers on labelled real points.
    """

    kinds: tuple[str, ...] = KINDS

    def __init__(self, linear: AttributeProbes, mlp: MLPReader):
        if tuple(linear.attribute_names) != tuple(mlp.attribute_names):
            raise ValueError("the two readers must read the same attributes")
        if linear.weights.shape[1] != mlp.dim:
            raise ValueError("the two readers must read points of the same dimension")
        self._readers = {"linear": linear, "mlp": mlp}

    @classmethod
    def fit(
        cls,
        embeddings: np.ndarray,
        attributes: np.ndarray,
        attribute_names: tuple[str, ...] | list[str],
        *,
        seed: int = 0,
        c: float = 1.0,
        mlp_hidden: int = MLP_HIDDEN,
        mlp_epochs: int = MLP_EPOCHS,
        mlp_batch_size: int = MLP_BATCH_SIZE,
        mlp_lr: float = MLP_LR,
        mlp_weight_decay: float = MLP_WEIGHT_DECAY,
        mlp_dropout: float = MLP_DROPOUT,
    ) -> Judge:
        """Fit both readers on real, unedited points of the judge split; returns a new judge.

        Raises DataError, naming the problem, for mismatched shapes, labels
        other than 0/1, or an attribute with a single class.
        """
        x, y, names = _check_fit_inputs(embeddings, attributes, attribute_names, "judge split")
        linear = AttributeProbes(x, y, names, c=c, class_weight="balanced")
        mlp = MLPReader(
            x, y, names, seed=seed, hidden=mlp_hidden, epochs=mlp_epochs,
            batch_size=mlp_batch_size, lr=mlp_lr, weight_decay=mlp_weight_decay,
            dropout=mlp_dropout,
        )
        return cls(linear, mlp)

    def state(self) -> dict:
        """Both readers' parameters (tensors, numbers and strings: a weights-only torch file)."""
        linear = self.linear
        return {"linear": {"weights": torch.from_numpy(np.array(linear.weights)),
                           "bias": torch.from_numpy(np.array(linear.bias)), "c": linear.c},
                "mlp": self.mlp.state()}

    @classmethod
    def from_state(cls, state: dict) -> Judge:
        """The judge a `state()` describes, frozen, without refitting."""
        mlp = MLPReader.from_state(state["mlp"])
        linear = AttributeProbes.from_parameters(
            np.asarray(state["linear"]["weights"]), np.asarray(state["linear"]["bias"]),
            mlp.attribute_names, c=state["linear"]["c"], class_weight="balanced")
        return cls(linear, mlp)

    @property
    def attribute_names(self) -> tuple[str, ...]:
        return tuple(self._readers["linear"].attribute_names)

    @property
    def dim(self) -> int:
        return self._readers["mlp"].dim

    @property
    def linear(self) -> AttributeProbes:
        return self._readers["linear"]

    @property
    def mlp(self) -> MLPReader:
        return self._readers["mlp"]

    def reader(self, kind: str):
        """The reader of one kind ("linear" or "mlp")."""
        if kind not in self._readers:
            raise KeyError(f"unknown judge kind {kind!r}; kinds are {self.kinds}")
        return self._readers[kind]

    def read(self, z: np.ndarray) -> dict[str, np.ndarray]:
        """{kind: (N, k) int8 readings} for any points z (N, d)."""
        z = np.asarray(z)
        if z.ndim != 2 or z.shape[1] != self.dim:
            raise ValueError(f"expected (N, {self.dim}) points, got {z.shape}")
        return {kind: self._readers[kind].predict(z) for kind in self.kinds}

    def report(self, embeddings: np.ndarray, attributes: np.ndarray) -> dict:
        """Both readers scored on labelled real points (the caller passes the test split).

        {kind: {"mean_balanced_accuracy": float,
                "attributes": {name: {"balanced_accuracy", "tpr", "tnr": float}}}},
        all plain Python floats. An attribute with a single class among the
        points (a small test split) has None for the missing rate and for its
        balanced accuracy, and is left out of the mean. Raises DataError if the
        shapes do not match.
        """
        x, y, names = _check_fit_inputs(embeddings, attributes, self.attribute_names, "report",
                                        both_classes=False)
        if x.shape[1] != self.dim:
            raise DataError(f"report: embeddings must have {self.dim} columns, got {x.shape[1]}")
        readings = self.read(x)
        out: dict = {}
        for kind in self.kinds:
            per_attribute = {}
            for j, name in enumerate(names):
                tpr, tnr = _rates(readings[kind][:, j], y[:, j])
                both = tpr is not None and tnr is not None
                per_attribute[name] = {
                    "balanced_accuracy": (tpr + tnr) / 2 if both else None,
                    "tpr": tpr, "tnr": tnr,
                }
            scored = [v["balanced_accuracy"] for v in per_attribute.values()
                      if v["balanced_accuracy"] is not None]
            mean = float(np.mean(scored)) if scored else None
            out[kind] = {"mean_balanced_accuracy": mean, "attributes": per_attribute}
        return out
