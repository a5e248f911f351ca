"""Sweep wing: grids of `dvc exp` runs sharded over machines, shared through a git remote
and a DVC remote, and ranked on val with collapse flags (`fclf sweep plan|work|report`).

Owns the sweep file and its shards (`spec`), the git and DVC commands a sweep runs and the
checks of its remotes (`dvc_commands`), one shard's worker (`work`), failure records shared
through the git remote (`failures`), the leaderboard (`leaderboard`) and the report
(`report`). May import `fclf.evaluate`, `fclf.plotting` and the top-level helpers; never
`fclf.cli` (the Typer commands find the dvc command and read `dvc exp show`, then call this
wing, never the other way round) or `fclf.train`.
"""
