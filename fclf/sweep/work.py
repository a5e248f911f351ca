"""`fclf sweep work`: run one shard of a sweep with DVC's task queue and push each result.

Idempotent, so a pre-empted cluster job can simply start again:

1. the remotes are checked before anything changes (unreachable: error, nothing queued);
2. grid points already on the git remote are skipped; ones that finished here but were
   not pushed (the job died while pushing) are pushed without running again;
3. what a killed worker left in this clone's queue is cleared (finished experiments stay);
4. the rest is queued (`dvc exp run --queue`) and run by `dvc queue start -j J`;
5. each experiment is pushed (`dvc exp push`: git refs + DVC outputs) as soon as it
   succeeds, so a kill loses at most the runs in flight; a failed run's log is saved and
   the others go on.

One worker per clone: DVC's queue lives in the clone's .dvc/tmp.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from fclf.atomic import write_text
from fclf.errors import FclfError
from fclf.sweep.dvc_commands import Commands
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
    push_failed: dict[str, str] = field(default_factory=dict)  # name -> the error

    @property
    def ok(self) -> bool:
        return not self.failed and not self.push_failed


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
) -> ShardResult:
    points = shard(sweep.points(), shard_index, shard_count)
    result = ShardResult([p.name for p in points])
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
    done_remote = commands.experiment_names(remote) if remote is not None else set()
    baseline = commands.head()
    done_here = commands.finished_experiments(baseline)
    todo = [p for p in points if p.name not in done_remote]
    if remote is None:
        result.skipped = [p.name for p in todo if p.name in done_here]
    else:
        result.skipped = [p.name for p in points if p.name in done_remote]
    say(f"{label}: {len(points)} grid points, {len(result.skipped)} already done")

    leftovers = commands.reset_queue()
    if leftovers:
        say(f"{label}: cleared {len(leftovers)} entries a previous worker left in the queue")
    for point in todo:
        if point.name in done_here and remote is not None:
            say(f"{label}: {point.name} finished before but was not pushed: pushing it")
            _push(commands, remote, dvc_remote, point.name, result, say)
    to_run = [p for p in todo if p.name not in done_here]
    if not to_run:
        return result
    for number, point in enumerate(to_run, 1):
        commands.queue_experiment(point.name, point.set_args())
        say(f"{label}: queued {number}/{len(to_run)} {point.name}")
    commands.start_workers(min(jobs, len(to_run)))
    say(f"{label}: running {len(to_run)} experiments with {min(jobs, len(to_run))} worker(s)")
    _wait_and_push(to_run, baseline, commands, jobs, remote, dvc_remote, log_dir, result, say,
                   label, poll_seconds)
    commands.stop_idle_workers()
    return result


def _wait_and_push(to_run: list[GridPoint], baseline: str, commands: Commands, jobs: int,
                   remote: str | None, dvc_remote: str | None, log_dir: Path,
                   result: ShardResult, say: Callable[[str], None], label: str,
                   poll_seconds: float) -> None:
    """Push each experiment as its git ref appears (a cheap `git for-each-ref` every poll);
    ask DVC's queue (`dvc queue status`, ~1 s of CPU that a 2-core run feels) only every
    STATUS_EVERY_S, for failures and for workers that all quit with work queued."""
    waiting = {p.name for p in to_run}
    started = last_report = time.monotonic()
    last_status = -math.inf
    reported = stalled_checks = 0
    while waiting:
        for name in sorted(waiting & commands.finished_experiments(baseline)):
            waiting.discard(name)
            if remote is None:
                result.finished.append(name)
                say(f"{label}: finished {name}")
            else:
                _push(commands, remote, dvc_remote, name, result, say)
        now = time.monotonic()
        if waiting and now - last_status >= max(STATUS_EVERY_S, poll_seconds):
            last_status = now
            status, workers = commands.queue_status()
            finished = commands.finished_experiments(baseline)  # after the status: no race
            for name in sorted(waiting - finished):
                state = status.get(name)
                if state in ("Failed", None):
                    waiting.discard(name)
                    log = log_dir / f"{name}.log"
                    text = commands.queue_logs(name) if state else "not in DVC's queue any more\n"
                    write_text(log, text)
                    result.failed[name] = log
                    say(f"{label}: FAILED {name} (log: {log})")
            stalled = (workers == 0 and "Running" not in status.values()
                       and any(status.get(name) == "Queued" for name in waiting))
            stalled_checks = stalled_checks + 1 if stalled else 0
            if stalled_checks >= STALL_CHECKS:  # every worker quit with work left
                say(f"{label}: no queue worker is alive but experiments are queued: restarting "
                    f"{min(jobs, len(waiting))} worker(s)")
                commands.clean_messages()
                commands.start_workers(min(jobs, len(waiting)))
                stalled_checks = 0
        done = len(to_run) - len(waiting)
        if waiting:
            if done != reported or now - last_report >= PROGRESS_EVERY_S:
                say(f"{label}: {done}/{len(to_run)} done, {len(waiting)} queued or running "
                    f"({now - started:.0f} s)")
                reported, last_report = done, now
            time.sleep(poll_seconds)


def _push(commands: Commands, remote: str, dvc_remote: str | None, name: str,
          result: ShardResult, say: Callable[[str], None]) -> None:
    for attempt in range(1, PUSH_TRIES + 1):
        try:
            commands.push(remote, name, dvc_remote)
        except FclfError as exc:
            if attempt == PUSH_TRIES:
                result.push_failed[name] = str(exc)
                say(f"push of {name} FAILED after {PUSH_TRIES} tries: {exc}")
                return
            time.sleep(2.0 * attempt)
            continue
        result.pushed.append(name)
        say(f"pushed {name} to {remote}")
        return


def summary(result: ShardResult, remote: str | None) -> list[str]:
    """The closing lines of a worker: counts, then each failure with its log."""
    lines = [f"{len(result.points)} grid points: {len(result.skipped)} already done, "
             + (f"{len(result.pushed)} pushed to {remote}" if remote is not None
                else f"{len(result.finished)} finished (kept in this clone: no --push)")
             + f", {len(result.failed)} failed, {len(result.push_failed)} not pushed"]
    lines += [f"  failed: {name}: {log}" for name, log in result.failed.items()]
    lines += [f"  not pushed: {name}: {error}" for name, error in result.push_failed.items()]
    if not result.ok:
        lines.append("Re-run the same command to retry them: finished experiments are skipped.")
    return lines
