"""The evaluation's settings from a validated `Config` (the stages and `fclf score` share them)."""

from __future__ import annotations

import dataclasses

from fclf.config import Config, FlowConfig
from fclf.evaluate.protocol import ProtocolSettings
from fclf.evaluate.selection import SelectionRule
from fclf.evaluate.tuning import PeerGrids


def protocol_settings(config: Config, flow: FlowConfig | None = None) -> ProtocolSettings:
    """The `eval` section, with the horizon edits use (the model file's, else `flow`)."""
    flow = flow or config.flow
    return ProtocolSettings(**dataclasses.asdict(config.eval), num_steps=flow.num_steps,
                            step_size=flow.step_size)


def peer_grids(config: Config) -> PeerGrids:
    fields = {f.name for f in dataclasses.fields(PeerGrids)}
    values = {k: (tuple(v) if isinstance(v, list) else v)
              for k, v in dataclasses.asdict(config.peers).items() if k in fields}
    return PeerGrids(**values)


def selection_rule(config: Config) -> SelectionRule:
    return SelectionRule.from_gate(config.gate)
