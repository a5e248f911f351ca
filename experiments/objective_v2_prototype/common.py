"""Shared prototype harness: data, truth, judge and the told/blind protocol on val/test.

`Protocol(split)` builds the protocol rows of a split (every row, one uniformly random
attribute flipped: `fclf.evaluate.request.sample_targets(labels, "single", 0)`), the exact
counterfactuals, and the judge readings of sources and counterfactuals. `Protocol.score(
edit_fn, read_fn)` scores an editor in told and blind mode:

- edit_fn(z (N,d) float32 tensor, s (N,k) float tensor, t (N,k) float tensor) -> (N,d)
  tensor of edits; s may be soft (probabilities) in blind mode if read_fn returns them.
- read_fn(z) -> (N,k) float tensor (0/1 or probabilities): the editor's blind reading.
"""

from __future__ import annotations

import time
from functools import lru_cache

import numpy as np
import torch

from fclf.data.embeddings_io import read_split
from fclf.data.truth import read_truth
from fclf.evaluate.protocol import ProtocolSettings, fit_judge
from fclf.evaluate.request import sample_targets

NAMES = ("Smiling", "Young", "Male", "Eyeglasses", "Mustache")
ROOT = str(__import__("pathlib").Path(__file__).resolve().parents[2] / "data" / "embeddings")


@lru_cache(maxsize=None)
def splits():
    return {s: read_split(f"{ROOT}/{s}.parquet", NAMES) for s in ("train", "val", "test", "judge")}


@lru_cache(maxsize=None)
def truth():
    return read_truth(f"{ROOT}/truth.npz", NAMES)


@lru_cache(maxsize=None)
def judge():
    return fit_judge(splits()["judge"], ProtocolSettings())


def train_tensors():
    tr = splits()["train"]
    return (torch.from_numpy(np.ascontiguousarray(tr.embeddings, np.float32)),
            torch.from_numpy(tr.attributes.astype(np.float32)),
            torch.from_numpy(np.asarray(tr.identities).astype(np.int64)))


def _judge_read(x: np.ndarray) -> dict:
    return judge().read(np.ascontiguousarray(x, np.float32))


class Protocol:
    def __init__(self, split: str = "val"):
        sp = splits()[split]
        self.split = split
        self.z = np.ascontiguousarray(sp.embeddings, np.float32)
        self.labels = sp.attributes.astype(np.int8)
        self.targets = sample_targets(self.labels, "single", 0).astype(np.int8)
        self.request = self.targets != self.labels  # (N, k) bool, one per row
        rows = np.arange(len(self.z))
        self.cf = truth().counterfactual(split, rows, self.targets).astype(np.float32)
        self.cf_norm = np.linalg.norm(self.cf - self.z, axis=1).sum()
        self.src_read = _judge_read(self.z)
        self.oracle = self._judge_scores(self.cf)

    def _judge_scores(self, x: np.ndarray) -> dict:
        read = _judge_read(x)
        out = {}
        for kind in ("linear", "mlp"):
            r = read[kind]
            out[f"flip_{kind}"] = float((r[self.request] == self.targets[self.request]).mean())
            keep = ~self.request
            out[f"keep_{kind}"] = float((r[keep] == self.src_read[kind][keep]).mean())
        return out

    def cre(self, x: np.ndarray) -> float:
        return float(np.linalg.norm(x - self.cf, axis=1).sum() / self.cf_norm)

    def per_attribute_cre(self, x: np.ndarray) -> dict:
        out = {}
        err = np.linalg.norm(x - self.cf, axis=1)
        ref = np.linalg.norm(self.cf - self.z, axis=1)
        j = self.request.argmax(1)
        for a, name in enumerate(NAMES):
            m = j == a
            out[name] = float(err[m].sum() / ref[m].sum())
        return out

    @torch.no_grad()
    def score(self, edit_fn, read_fn=None, per_attribute=False) -> dict:
        z = torch.from_numpy(self.z)
        s = torch.from_numpy(self.labels.astype(np.float32))
        t = torch.from_numpy(self.targets.astype(np.float32))
        res = {}
        t0 = time.perf_counter()
        told = edit_fn(z, s, t).numpy()
        res["edit_s"] = time.perf_counter() - t0
        res["told_cre"] = self.cre(told)
        res.update({f"told_{k}": v for k, v in self._judge_scores(told).items()})
        if per_attribute:
            res["told_cre_per_attr"] = self.per_attribute_cre(told)
        noop = edit_fn(z, s, s).numpy()
        res["noop_move"] = float(np.linalg.norm(noop - self.z, axis=1).max())
        if read_fn is not None:
            r = read_fn(z)
            hard = (r > 0.5).float()
            # blind target: the reading with the requested attribute set
            tb = torch.where(torch.from_numpy(self.request), t, hard)
            blind = edit_fn(z, r, tb).numpy()
            res["blind_cre"] = self.cre(blind)
            res.update({f"blind_{k}": v for k, v in self._judge_scores(blind).items()})
        return res


def logistic_reader():
    """The library's blind reader: logistic per attribute fitted on train; hard 0/1."""
    from fclf.train.reader_fit import fit_source_reader
    z, y, _ = train_tensors()
    w, b = fit_source_reader(z, y)
    return lambda x: ((x @ w.T + b) > 0).float()


def fmt(res: dict) -> str:
    keys = ["told_cre", "blind_cre", "told_flip_linear", "told_keep_linear", "told_flip_mlp",
            "told_keep_mlp", "noop_move"]
    return "  ".join(f"{k}={res[k]:.4f}" for k in keys if k in res)
