"""Failure records: what a failed grid point left, readable on every machine.

A worker whose run fails writes a small JSON record (host, time, exit status, shard, the last
lines of the run's log) into the clone's git as a blob under
`refs/fclf-sweeps/failed/<baseline commit>/<experiment>` and pushes that ref to the git
remote next to the experiments, so `fclf sweep report` on any machine that fetches it can say
`failed on <host>: <last line>`. A later successful run of the point deletes the record.
Pure functions here; fclf.sweep.dvc_commands moves the refs.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass

REF_ROOT = "refs/fclf-sweeps/failed"
TAIL_LINES = 20
# DVC's own closing lines carry no cause: the line before them does.
_BOILERPLATE = re.compile(r"^(Having any troubles\?|ERROR: failed to reproduce|"
                          r"ERROR: unexpected error\s*$)")
_EXIT = re.compile(r"exited with (-?\d+)")


@dataclass(frozen=True)
class Failure:
    experiment: str
    host: str
    time: str  # UTC, ISO 8601 to the second
    exit_status: int | None  # the failed stage's exit status, when DVC's log names it
    shard: str  # "I/N"
    log_tail: tuple[str, ...]

    @property
    def last_line(self) -> str:
        """The most telling line of the log tail: the last one that is not DVC boilerplate."""
        lines = [line.strip() for line in self.log_tail if line.strip()]
        telling = [line for line in lines if not _BOILERPLATE.match(line)]
        return (telling or lines or ["no log"])[-1]

    @property
    def summary(self) -> str:
        return f"failed on {self.host}: {self.last_line}"

    def details(self) -> str:
        status = "unknown" if self.exit_status is None else str(self.exit_status)
        return f"on {self.host} at {self.time} (shard {self.shard}), exit status {status}"

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "log_tail": list(self.log_tail)}, indent=1) + "\n"


def failure_from_log(experiment: str, log: str, host: str, time: str, shard: str,
                     lines: int = TAIL_LINES) -> Failure:
    """The record of a failed run from its log (`dvc queue logs`)."""
    kept = [line.rstrip() for line in log.splitlines() if line.strip()][-lines:]
    statuses = _EXIT.findall(log)
    return Failure(experiment, host, time, int(statuses[-1]) if statuses else None, shard,
                   tuple(kept))


def parse_failure(text: str) -> Failure | None:
    """A record written by `Failure.to_json`, or None when it is not one."""
    try:
        raw = json.loads(text)
        return Failure(str(raw["experiment"]), str(raw["host"]), str(raw["time"]),
                       None if raw.get("exit_status") is None else int(raw["exit_status"]),
                       str(raw.get("shard", "")), tuple(str(x) for x in raw["log_tail"]))
    except (ValueError, KeyError, TypeError):
        return None


def ref_prefix(baseline: str) -> str:
    return f"{REF_ROOT}/{baseline}/"


def failure_ref(baseline: str, experiment: str) -> str:
    return ref_prefix(baseline) + experiment
