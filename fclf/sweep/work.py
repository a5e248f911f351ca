"""`fclf sweep work`: run one shard of a sweep with DVC's task queue and push each result.

Idempotent, so a pre-empted cluster job can simply start again:

1. the remotes are checked before anything changes (unreachable: error, nothing queued);
2. grid points already on the git remote are skipped; ones that finished here but were
   not pushed (the job died while pushing) are pushed without running again;
3. what a killed worker left in this clone's queue is cleared (finished experiments stay);
4. the rest is queued (`dvc exp run --queue`) and run by `dvc queue start -j J`;
5. each experiment is pushed (`dvc exp push`: git refs + DVC outputs) as soon as it
   succeeds, so a kill loses at most the runs in flight; a failed run's log is saved, its
   failure record (host, time, exit status, log tail: fclf.sweep.failures) is pushed to the
   git remote for every machine's report, and the others go on;
6. a point that failed before is run again; when it succeeds its failure record goes.

One worker per clone: DVC's queue lives in the clone's .dvc/tmp.
"""

from __future__ import annotations

import math
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from fclf.atomic import write_text
from fclf.errors import FclfError
from fclf.sweep.dvc_commands import Commands
from fclf.sweep.failures import Failure, failure_from_log
from fclf.sweep.spec import GridPoint, Sweep, shard

PUSH_TRIES = 3
PROGRESS_EVERY_S = 60.0
STATUS_EVERY_S = 30.0  # between `dvc queue status` calls (failures, dead workers)
STALL_CHECKS = 2  # status checks with queued work and no live worker before a restart


@dataclass
class ShardResult:
    """What one `work` call did with its shard's grid points."""

    points: list[str]
    skipped: list[str] = field(default_factory=list)   # already on the remote (or here)
    pushed: list[str] = field(default_factory=list)
    finished: list[str] = field(default_factory=list)  # ran here, not pushed (no remote)
    failed: dict[str, Path] = field(default_factory=dict)  # name -> its log file
    failures: dict[str, Failure] = field(default_factory=dict)  # name -> its record
    push_failed: dict[str, str] = field(default_factory=dict)  # name -> the error
    retried: list[str] = field(default_factory=list)  # had a failure record: run again

    @property
    def ok(self) -> bool:
        return not self.failed and not self.push_failed


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def work_shard(
    sweep: Sweep,
    shard_index: int,
    shard_count: int,
    commands: Commands,
    jobs: int,
    remote: str | None,
    dvc_remote: str | None,
    log_dir: Path,
    say: Callable[[str], None],
    poll_seconds: float = 5.0,
    host: str | None = None,
) -> ShardResult:
    points = shard(sweep.points(), shard_index, shard_count)
    label = f"sweep {sweep.name}, shard {shard_index}/{shard_count}"
    if remote is not None:
        commands.check_git_remote(remote)
        dvc_remote = commands.check_dvc_remote(dvc_remote)
    status, alive = commands.queue_status()
    if alive and {"Running", "Queued"} & set(status.values()):
        raise FclfError(f"this clone already has {alive} DVC queue worker(s) with work (another "
                        "`fclf sweep work`?): stop them with `dvc queue stop --kill`, or run "
                        "this shard in its own clone")
    if alive:  # idle workers of an earlier run that have not exited yet
        commands.stop_idle_workers()
    baseline = commands.head()
    worker = _Worker(commands, remote, dvc_remote, baseline, ShardResult([p.name for p in points]),
                     say, label, f"{shard_index}/{shard_count}", host or socket.gethostname(),
                     log_dir)
    result = worker.result
    done_remote = commands.experiment_names(remote) if remote is not None else set()
    worker.failed_before = (commands.remote_failures(remote, baseline) if remote is not None
                            else set(commands.failures(baseline)))
    done_here = commands.finished_experiments(baseline)
    todo = [p for p in points if p.name not in done_remote]
    if remote is None:
        result.skipped = [p.name for p in todo if p.name in done_here]
    else:
        result.skipped = [p.name for p in points if p.name in done_remote]
    result.retried = [p.name for p in todo
                      if p.name in worker.failed_before and p.name not in done_here]
    say(f"{label}: {len(points)} grid points, {len(result.skipped)} already done"
        + (f", {len(result.retried)} failed before (running them again)"
           if result.retried else ""))

    leftovers = commands.reset_queue()
    if leftovers:
        say(f"{label}: cleared {len(leftovers)} entries a previous worker left in the queue")
    for point in todo:
        if point.name in done_here and remote is not None:
            say(f"{label}: {point.name} finished before but was not pushed: pushing it")
            worker.succeeded(point.name)
    to_run = [p for p in todo if p.name not in done_here]
    if not to_run:
        return result
    for number, point in enumerate(to_run, 1):
        commands.queue_experiment(point.name, point.set_args())
        say(f"{label}: queued {number}/{len(to_run)} {point.name}")
    commands.start_workers(min(jobs, len(to_run)))
    say(f"{label}: running {len(to_run)} experiments with {min(jobs, len(to_run))} worker(s)")
    worker.wait(to_run, jobs, poll_seconds)
    commands.stop_idle_workers()
    return result


@dataclass
class _Worker:
    """One shard's bookkeeping: what to do when a run succeeds or fails."""

    commands: Commands
    remote: str | None
    dvc_remote: str | None
    baseline: str
    result: ShardResult
    say: Callable[[str], None]
    label: str
    shard: str
    host: str
    log_dir: Path
    failed_before: set[str] = field(default_factory=set)

    def succeeded(self, name: str) -> None:
        """Push it (or keep it here without a remote), then drop its old failure record."""
        if self.remote is None:
            self.result.finished.append(name)
            self.say(f"{self.label}: finished {name}")
        elif not self._push(name):
            return
        if name in self.failed_before:
            try:
                self.commands.clear_failure(self.baseline, name, self.remote)
            except FclfError as exc:  # the report ranks the run anyway: a record never wins
                self.say(f"{self.label}: could not delete the old failure record of {name}: "
                         f"{exc}")

    def failed(self, name: str, in_queue: bool) -> None:
        """Save the log here, record the failure and share the record through the remote."""
        log = self.log_dir / f"{name}.log"
        text = self.commands.queue_logs(name) if in_queue else "not in DVC's queue any more\n"
        write_text(log, text)
        failure = failure_from_log(name, text, self.host, utc_now(), self.shard)
        self.result.failed[name] = log
        self.result.failures[name] = failure
        self.say(f"{self.label}: FAILED {name}: {failure.last_line} (log: {log})")
        try:
            self.commands.record_failure(self.baseline, failure)
            if self.remote is not None:
                self.commands.push_failure(self.remote, self.baseline, name)
        except FclfError as exc:
            self.say(f"{self.label}: the failure record of {name} was not shared: {exc}")

    def wait(self, to_run: list[GridPoint], jobs: int, poll_seconds: float) -> None:
        """Handle each experiment as its git ref appears (a cheap `git for-each-ref` every
        poll); ask DVC's queue (`dvc queue status`, ~1 s of CPU that a 2-core run feels) only
        every STATUS_EVERY_S, for failures and for workers that all quit with work queued."""
        commands, label = self.commands, self.label
        waiting = {p.name for p in to_run}
        started = last_report = time.monotonic()
        last_status = -math.inf
        reported = stalled_checks = 0
        while waiting:
            for name in sorted(waiting & commands.finished_experiments(self.baseline)):
                waiting.discard(name)
                self.succeeded(name)
            now = time.monotonic()
            if waiting and now - last_status >= max(STATUS_EVERY_S, poll_seconds):
                last_status = now
                status, workers = commands.queue_status()
                finished = commands.finished_experiments(self.baseline)  # after: no race
                for name in sorted(waiting - finished):
                    state = status.get(name)
                    if state in ("Failed", None):
                        waiting.discard(name)
                        self.failed(name, in_queue=state is not None)
                stalled = (workers == 0 and "Running" not in status.values()
                           and any(status.get(name) == "Queued" for name in waiting))
                stalled_checks = stalled_checks + 1 if stalled else 0
                if stalled_checks >= STALL_CHECKS:  # every worker quit with work left
                    self.say(f"{label}: no queue worker is alive but experiments are queued: "
                        f"restarting {min(jobs, len(waiting))} worker(s)")
                    commands.clean_messages()
                    commands.start_workers(min(jobs, len(waiting)))
                    stalled_checks = 0
            done = len(to_run) - len(waiting)
            if waiting:
                if done != reported or now - last_report >= PROGRESS_EVERY_S:
                    self.say(f"{label}: {done}/{len(to_run)} done, {len(waiting)} queued or "
                             f"running ({now - started:.0f} s)")
                    reported, last_report = done, now
                time.sleep(poll_seconds)

    def _push(self, name: str) -> bool:
        for attempt in range(1, PUSH_TRIES + 1):
            try:
                self.commands.push(self.remote, name, self.dvc_remote)
            except FclfError as exc:
                if attempt == PUSH_TRIES:
                    self.result.push_failed[name] = str(exc)
                    self.say(f"push of {name} FAILED after {PUSH_TRIES} tries: {exc}")
                    return False
                time.sleep(2.0 * attempt)
                continue
            self.result.pushed.append(name)
            self.say(f"pushed {name} to {self.remote}")
            return True
        return False


def summary(result: ShardResult, remote: str | None) -> list[str]:
    """The closing lines of a worker: counts, then each failure with its log."""
    lines = [f"{len(result.points)} grid points: {len(result.skipped)} already done, "
             + (f"{len(result.pushed)} pushed to {remote}" if remote is not None
                else f"{len(result.finished)} finished (kept in this clone: no --push)")
             + f", {len(result.failed)} failed, {len(result.push_failed)} not pushed"]
    for name, log in result.failed.items():
        failure = result.failures.get(name)
        lines.append(f"  failed: {name}: {log}"
                     + (f" ({failure.details()}: {failure.last_line})" if failure else ""))
    lines += [f"  not pushed: {name}: {error}" for name, error in result.push_failed.items()]
    if not result.ok:
        lines.append("Re-run the same command to retry them: finished experiments are skipped.")
    return lines
