"""Progress bars that behave in logs.

`progress(iterable, **kw)` takes tqdm's arguments and returns a tqdm object (iterate it, use
it as a context manager, `update`, `set_postfix_str`, `close`):

- stderr (or `file=`) is a terminal: an ordinary tqdm bar, redrawn in place;
- anything else (a log file, a pipe, CI, `dvc repro > log`): no redraws at all. The bar counts
  silently and, when it is closed, writes **one summary line**, e.g.
  ``embed: 202599/202599 img in 05:12 (649.3 img/s)``, with the last postfix appended.
  A bar made with `leave=False` (it vanishes on a terminal too) writes nothing.

`disable=True` is honoured either way (nothing written). tqdm writes every redraw into a
non-terminal stream (about 100 KB of carriage-return lines for one `make repro`), which is
what this avoids; a summary line rather than a throttled bar (`mininterval`) keeps the log
independent of how long a run takes.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any, TextIO

from tqdm import tqdm

__all__ = ["progress", "is_terminal"]


def is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):  # no isatty, or a closed stream
        return False


class _Sink:
    """Where a log-mode bar's redraws go: nowhere."""

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass


class _SummaryBar(tqdm):
    """A tqdm that draws nothing and writes one summary line to `summary_file` on close."""

    def __init__(self, *args: Any, summary_file: TextIO, **kwargs: Any) -> None:
        self._summary_file = summary_file
        self._summarised = False
        kwargs["file"] = _Sink()
        kwargs.setdefault("mininterval", 3600.0)  # nothing to redraw: skip the formatting
        super().__init__(*args, **kwargs)

    def summary(self) -> str:
        d = self.format_dict
        unit = d.get("unit") or "it"
        desc = d.get("prefix") or ""
        n, total, elapsed = d["n"], d.get("total"), d.get("elapsed") or 0.0
        count = f"{n:g}/{total:g}" if total else f"{n:g}"
        rate = f" ({n / elapsed:.1f} {unit}/s)" if elapsed > 0 and n else ""
        postfix = f", {d['postfix']}" if d.get("postfix") else ""
        head = f"{desc}: " if desc else ""
        return f"{head}{count} {unit} in {self.format_interval(elapsed)}{rate}{postfix}"

    def close(self) -> None:
        if not self._summarised and not self.disable and self.leave:
            self._summarised = True
            line = self.summary()
            super().close()
            print(line, file=self._summary_file, flush=True)
            return
        self._summarised = True
        super().close()


def progress(iterable: Iterable[Any] | None = None, **kwargs: Any) -> tqdm:
    """tqdm on a terminal; silent with one summary line at the end otherwise (module doc)."""
    stream = kwargs.pop("file", None) or sys.stderr
    if kwargs.get("disable") or is_terminal(stream):
        return tqdm(iterable, file=stream, **kwargs)
    kwargs.setdefault("leave", True)
    return _SummaryBar(iterable, summary_file=stream, **kwargs)
