"""The peers file: every peer's hyper-parameters and learned arrays, and the plain reader.

One torch file (read with weights_only=True: tensors, numbers, strings, lists and
dicts only). Peers that keep no arrays of their own (the walks along train means,
the k-NN analogy) are rebuilt from the train split, which the caller passes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from fclf.atomic import torch_load, torch_save
from fclf.errors import FclfError
from fclf.evaluate.peers.analogy import KnnAnalogy
from fclf.evaluate.peers.base import Peer, TrainData
from fclf.evaluate.peers.conditional_flow import ConditionalFlow
from fclf.evaluate.peers.lines import CodeLine, ConditionalDirection, MeanDirection
from fclf.evaluate.peers.reference import Reference
from fclf.evaluate.probes import AttributeProbes

PEERS: dict[str, type[Peer]] = {cls.name: cls for cls in (
    MeanDirection, ConditionalDirection, CodeLine, KnnAnalogy, ConditionalFlow)}
FORMAT = 1


def _tensors(state: dict[str, Any]) -> dict[str, torch.Tensor]:
    return {k: torch.as_tensor(np.asarray(v)) if not isinstance(v, torch.Tensor) else v
            for k, v in state.items()}


def _arrays(state: dict[str, Any]) -> dict[str, np.ndarray]:
    return {k: v.numpy() if isinstance(v, torch.Tensor) else v for k, v in state.items()}


def save_peers(path: str | Path, peers: dict[str, Peer], reference: Peer | None,
               data: TrainData, report: dict) -> None:
    """Write the tuned peers, the reference (or None) and the tuning report atomically."""
    entries = {name: {"kind": peer.name, "hyper": peer.hyper(), "state": _tensors(peer.state())}
               for name, peer in peers.items()}
    torch_save({
        "format": FORMAT,
        "attributes": list(data.reader.attribute_names),
        "reader": {"weights": torch.as_tensor(data.reader.weights),
                   "bias": torch.as_tensor(data.reader.bias), "c": data.reader.c},
        "peers": entries,
        "reference": None if reference is None else {
            "hyper": reference.hyper(), "state": _tensors(reference.state())},
        "report": report,
    }, path)


def load_peers(path: str | Path, train_split) -> tuple[dict[str, Peer], Peer | None, dict]:
    """(peers by name, the reference or None, the tuning report) from a peers file."""
    record = torch_load(path, "peers file")
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise FclfError(f"{path}: not an fclf peers file of format {FORMAT}; "
                        "rerun the train-baselines stage")
    names = tuple(record["attributes"])
    if names != tuple(train_split.attribute_names):
        raise FclfError(f"{path}: peers of attributes {list(names)}, the data has "
                        f"{list(train_split.attribute_names)}; rerun the train-baselines stage")
    reader = record["reader"]
    probes = AttributeProbes.from_parameters(reader["weights"].numpy(), reader["bias"].numpy(),
                                             names, c=reader["c"])
    data = TrainData.of(train_split, probes)
    peers = {}
    for name, entry in record["peers"].items():
        kind = PEERS.get(entry["kind"])
        if kind is None:
            raise FclfError(f"{path}: unknown peer kind {entry['kind']!r}")
        peers[name] = kind.restore(entry["hyper"], _arrays(entry["state"]), data)
    reference = record.get("reference")
    if reference is not None:
        reference = Reference.restore(reference["hyper"], _arrays(reference["state"]), data)
    return peers, reference, record.get("report") or {}
