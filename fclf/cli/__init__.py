"""The `fclf` command (`fclf.cli.main:app`) and its subcommands.

transfer, gate, data-report and the benchmarks. The top of the import order:
may import every wing; nothing in the library imports it.
"""
