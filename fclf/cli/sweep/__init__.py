"""`fclf sweep`: grids of `dvc exp` runs sharded over machines, shared through a git remote
and a DVC remote, and ranked on val with collapse flags (plan, work, report)."""
