"""`fclf sweep report`: pull a sweep's experiments and write its leaderboard and Pareto plot.

Every grid point appears exactly once: with its headline metrics (from `dvc exp show`),
as failed (with the failure record its worker pushed to the git remote: host, time, exit
status, the end of its log) or as missing (not run yet, or its worker died). Runs are
ranked on val and shown on test (fclf.sweep.leaderboard).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from fclf.atomic import write_text
from fclf.errors import FclfError
from fclf.evaluate.selection import SelectionRule
from fclf.sweep.dvc_commands import Commands
from fclf.sweep.leaderboard import (
    Entry,
    Run,
    entries_for,
    leaderboard_csv,
    leaderboard_markdown,
    pareto_csv,
    pareto_rows,
    rank_entries,
)
from fclf.sweep.spec import Sweep

FILES = ("leaderboard.md", "leaderboard.csv", "pareto.csv", "pareto.png")


@dataclass
class Report:
    ranked: list[Entry]
    markdown: str
    files: list[Path]


def sweep_report(sweep: Sweep, commands: Commands, out_dir: Path, remote: str | None,
                 dvc_remote: str | None, cache: bool, say: Callable[[str], None],
                 read_runs: Callable[[Path], Sequence[Run]],
                 rule: SelectionRule | None = None) -> Report:
    """Pull the sweep's experiments and failure records from `remote` (None: this clone's
    only), rank the runs `read_runs(root)` gives (`dvc exp show`, read after pulling) and
    write the report's files into `out_dir`. `rule`: the selection rule's thresholds (the
    project's gate; used when the sweep selects by the rule)."""
    points = sweep.points()
    baseline = commands.head()
    if remote is not None:
        try:
            commands.check_git_remote(remote)
        except FclfError as exc:
            raise FclfError(f"{exc} (pass --remote NAME|URL, or --local to rank this clone's "
                            "experiments without pulling)") from None
        if cache and (dvc_remote is not None or commands.has_default_dvc_remote()):
            try:
                commands.check_dvc_remote(dvc_remote)
            except FclfError as exc:
                raise FclfError(f"{exc} (or pass --no-cache to pull metrics only)") from None
        commands.fetch_failures(remote, baseline)
        on_remote = commands.experiment_names(remote)
        wanted = [p.name for p in points if p.name in on_remote]
        say(f"sweep {sweep.name}: {len(wanted)} of {len(points)} grid points are on {remote}")
        if wanted:
            commands.pull(remote, wanted, dvc_remote, cache)
            say(f"pulled {len(wanted)} experiments" + ("" if cache else " (without outputs)"))
    runs = read_runs(commands.root)
    ranked = rank_entries(entries_for(points, runs, commands.failures(baseline)),
                          sweep.selection, rule)
    markdown = leaderboard_markdown(ranked, sweep)
    rows = pareto_rows(ranked)
    write_text(out_dir / "leaderboard.md", markdown)
    write_text(out_dir / "leaderboard.csv", leaderboard_csv(ranked, sweep))
    write_text(out_dir / "pareto.csv", pareto_csv(rows))
    from fclf.plotting.sweep_pareto import draw_sweep_pareto

    draw_sweep_pareto(rows, out_dir / "pareto.png",
                      f"Sweep {sweep.name}: flip vs preservation, one point per run")
    return Report(ranked, markdown, [out_dir / name for name in FILES])

