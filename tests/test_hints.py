"""Hints for logs: `fclf.progress` draws bars on a terminal and one summary line elsewhere."""

from __future__ import annotations

import io

from fclf.progress import is_terminal, progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_log_gets_one_summary_line_and_no_redraws() -> None:
    log = io.StringIO()
    assert not is_terminal(log)
    total = 0
    for item in progress(range(1000), desc="embed", unit="img", file=log, mininterval=0):
        total += item
    assert total == sum(range(1000))
    lines = log.getvalue().splitlines()
    assert len(lines) == 1 and "\r" not in log.getvalue()
    assert lines[0].startswith("embed: 1000/1000 img in 00:0")


def test_update_context_manager_and_postfix() -> None:
    log = io.StringIO()
    with progress(total=10, initial=4, desc="embed", unit="img", file=log) as bar:
        for _ in range(3):
            bar.update(2)
        bar.set_postfix_str("loss: 0.5")
    bar.close()  # closing twice writes once
    assert log.getvalue().count("\n") == 1
    assert log.getvalue().startswith("embed: 10/10 img in ") and "loss: 0.5" in log.getvalue()


def test_transient_and_disabled_bars_write_nothing_to_a_log() -> None:
    log = io.StringIO()
    bar = progress(range(5), desc="epoch 1/2", leave=False, file=log)
    assert list(bar) == list(range(5))
    bar.close()
    assert list(progress(range(3), disable=True, file=log)) == [0, 1, 2]
    assert log.getvalue() == ""


def test_a_terminal_gets_an_ordinary_redrawn_bar() -> None:
    tty = Terminal()
    for _ in progress(range(50), desc="train", file=tty, mininterval=0, miniters=1):
        pass
    out = tty.getvalue()
    assert out.count("\r") > 10 and "train: 100%" in out


def test_a_stream_without_isatty_is_a_log() -> None:
    class Bare:
        def __init__(self) -> None:
            self.text = ""

        def write(self, text: str) -> None:
            self.text += text

        def flush(self) -> None:
            pass

    bare = Bare()
    assert not is_terminal(bare)
    list(progress(range(3), file=bare))
    assert bare.text.count("\n") == 1 and bare.text.startswith("3/3 it in ")
