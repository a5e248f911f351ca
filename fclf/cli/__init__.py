"""The `fclf` command (`fclf.cli.main:app`) and its subcommands.

transfer, gate, score, compare, data-report, plots, the benchmarks and the thin `sweep`
commands (argument parsing over `fclf.sweep`). The top of the import order: may import
every wing; nothing in the library imports it.
"""
