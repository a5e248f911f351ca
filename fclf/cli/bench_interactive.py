"""`fclf bench interactive`: how fast the interactive commands answer in this workspace.

Times, as a user meets them, in fresh processes: the interpreter alone, `fclf` start-up
(importing the command), `fclf transfer` on a stored embedding, and `fclf score` on a
do-nothing editor (every protocol row left where it is, so the yardstick does all of its
work). `fclf transfer` is also timed in-process after a warm-up: what one edit costs once
torch is imported. Medians over `repeats` runs; the targets are those of the docs' Speed
page (transfer <= 1 s beyond start-up, score <= 10 s).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from fclf.errors import FclfError

TRANSFER_TARGET_S = 1.0
SCORE_TARGET_S = 10.0
RUN_FCLF = "from fclf.cli.main import main; main()"


def _wall(command: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode not in (0, 1):  # score exits 1 when the do-nothing editor fails the gate
        raise FclfError(f"bench interactive: {' '.join(command[3:])} failed "
                        f"(exit {done.returncode}): {done.stderr.strip()[-400:]}")
    return seconds


def _median(command: list[str], cwd: Path, repeats: int) -> float:
    return statistics.median(_wall(command, cwd) for _ in range(repeats))


def _do_nothing_edits(protocol: Path, embeddings: Path, out: Path) -> None:
    from fclf.data.embeddings_io import read_split

    record = np.load(protocol)
    names = [str(n) for n in record["attribute_names"]]
    split = read_split(embeddings / f"{protocol.stem.split('_')[1]}.parquet", names)
    z = split.embeddings[record["source_rows"]].astype(np.float32)
    np.savez(out, edited=z, noop=z)


def bench_interactive(
    workspace: Path = Path("."), repeats: int = 3, split: str = "test",
) -> dict[str, Any]:
    """Medians in seconds (see the module docstring); needs the pipeline's outputs."""
    from fclf.cli.transfer.command import transfer_from_files
    from fclf.data.embeddings_io import read_split

    workspace = Path(workspace)
    model, embeddings = Path("models/fclf.pt"), Path("data/embeddings")
    probes, protocol = Path("models/probes.pt"), Path(f"eval/protocol_{split}_told.npz")
    for needed in (model, embeddings, probes, protocol):
        if not (workspace / needed).exists():
            raise FclfError(f"bench interactive: {workspace / needed} not found; run "
                            "`dvc repro` first")
    record = np.load(workspace / protocol)
    names = [str(n) for n in record["attribute_names"]]
    test = read_split(workspace / embeddings / f"{split}.parquet", names)
    image_id = str(test.image_ids[0])
    flip = f"{names[0]}={1 - int(test.attributes[0, 0])}"
    fclf = [sys.executable, "-c", RUN_FCLF]
    transfer_args = ["transfer", "--image-id", image_id, "--split", split, "--set", flip]

    def in_process() -> float:
        started = time.perf_counter()
        transfer_from_files(workspace / model, workspace / embeddings, image_id=image_id,
                            split=split, overrides=[flip], probes=workspace / probes,
                            warn=lambda line: None)
        return time.perf_counter() - started

    in_process()  # warm-up: first torch calls
    call = statistics.median(in_process() for _ in range(repeats))
    interpreter = _median([sys.executable, "-c", "pass"], workspace, repeats)
    startup = _median([*fclf, "--help"], workspace, repeats)
    transfer = _median([*fclf, *transfer_args], workspace, repeats)
    with tempfile.TemporaryDirectory() as scratch:
        edits = Path(scratch) / "do_nothing.npz"
        _do_nothing_edits(workspace / protocol, workspace / embeddings, edits)
        score = _median([*fclf, "score", "--edits", str(edits), "--split", split],
                        workspace, repeats)
    return {
        "repeats": repeats,
        "interpreter_seconds": round(interpreter, 3),
        "fclf_startup_seconds": round(startup, 3),
        "transfer_seconds": round(transfer, 3),
        "transfer_beyond_startup_seconds": round(transfer - startup, 3),
        "transfer_in_process_seconds": round(call, 3),
        "score_seconds": round(score, 3),
        "targets": {"transfer_in_process_seconds": TRANSFER_TARGET_S,
                    "score_seconds": SCORE_TARGET_S},
        "met": {"transfer_in_process_seconds": call <= TRANSFER_TARGET_S,
                "transfer_beyond_startup_seconds": transfer - startup <= TRANSFER_TARGET_S,
                "score_seconds": score <= SCORE_TARGET_S},
    }
