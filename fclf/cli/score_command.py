"""`fclf score`: score an external editor's edits on FCLF's yardstick."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from fclf.errors import exit_on_user_error


@exit_on_user_error
def score_command(
    edits: Path = typer.Option(..., help="told mode: npz with 'edited' (N, d) float32 in the "
                               "protocol's order, 'noop' (N, d): your answer to 'change "
                               "nothing' (required to pass), optional 'trajectories' (T+1, N, d)"),
    blind_edits: Path | None = typer.Option(
        None, help="blind mode (scored beside told, not gated): the same arrays, made without "
        "the source labels"),
    split: str = typer.Option("test", help="which protocol to score on: val | test"),
    protocol: Path | None = typer.Option(
        None, help="told protocol file (default: eval/protocol_<split>_told.npz; the blind "
        "one is found beside it)"),
    embeddings: Path = typer.Option(Path("data/embeddings"), help="folder with the splits"),
    judge: Path = typer.Option(Path("models/judge.pt"),
                               help="the fitted judge (fit-judge stage; refitted if absent)"),
    params: Path = typer.Option(Path("params.yaml"), help="params file (eval and gate sections)"),
    as_json: bool = typer.Option(False, "--json", help="print only JSON on stdout"),
) -> None:
    """Score your own editor on FCLF's yardstick: same judge, rows, requests, ground truth,
    realism and collapse measures and gate. Exit 1 when the gate fails.

    Read eval/protocol_<split>_told.npz: `source_rows` (rows of
    data/embeddings/<split>.parquet), `request` (N, k: the value each requested attribute
    must take, -1 = keep the source's) and `source_attributes` (the labels). Edit each row so
    that the requested attributes change and nothing else, save the edits in that order as
    'edited', and your editor's answer to "change nothing" as 'noop'. For blind mode,
    eval/protocol_<split>_blind.npz has no labels: your editor reads the sources itself.
    """
    import numpy as np

    from fclf.config import load_config
    from fclf.data.embeddings_io import read_split
    from fclf.errors import FclfError
    from fclf.evaluate.configured import protocol_settings
    from fclf.evaluate.gate import format_table, threshold_checks
    from fclf.evaluate.protocol import Yardstick, read_edits_file, score_external
    from fclf.evaluate.report import summary_lines
    from fclf.evaluate.request import check_request

    if split not in ("val", "test"):
        raise FclfError(f"--split must be val or test, got {split!r}")
    config = load_config(params)
    names = config.data.attributes
    told_path = protocol or Path("eval") / f"protocol_{split}_told.npz"
    told = _read_npz(told_path, "protocol file (run `dvc repro evaluate-transfer`)")
    for key in ("source_rows", "request", "source_attributes", "attribute_names"):
        if key not in told:
            raise FclfError(f"{told_path}: no '{key}' array; not a told-mode protocol file of "
                            "this fclf (rerun `dvc repro evaluate-transfer`)")
    if str(told.get("split", split)) != split or str(told.get("mode", "told")) != "told":
        raise FclfError(f"{told_path}: a protocol of split {str(told.get('split'))!r}, mode "
                        f"{str(told.get('mode'))!r}; expected {split!r}, told")
    if [str(n) for n in told["attribute_names"]] != list(names):
        raise FclfError(f"{told_path}: attributes {list(told['attribute_names'])} differ from "
                        f"the params' data.attributes {list(names)}")
    data = {s: read_split(embeddings / f"{s}.parquet", names) for s in ("train", "judge", split)}
    rows = np.asarray(told["source_rows"], np.int64)
    dim = data[split].embeddings.shape[1]
    try:
        request = check_request(told["request"], len(names), f"{told_path}: request")
        editors = {"told": read_edits_file(_read_npz(edits, "edits file"), rows, dim,
                                           str(edits))}
        if blind_edits is not None:
            editors["blind"] = read_edits_file(_read_npz(blind_edits, "edits file"), rows, dim,
                                               str(blind_edits))
    except ValueError as exc:
        raise FclfError(str(exc)) from None
    truth_fn = None
    truth_path = embeddings / "truth.npz"
    if truth_path.exists():
        from fclf.data.truth import read_truth

        truth = read_truth(truth_path, names)
        truth.check_split(split, data[split], embeddings / f"{split}.parquet")

        def truth_fn(rows, targets):
            return truth.counterfactual(split, rows, targets)

    settings = protocol_settings(config)
    if judge.is_file():
        from fclf.evaluate.yardstick_io import load_yardstick

        yardstick = load_yardstick(judge, names)
    else:
        yardstick = Yardstick.fit(data["judge"], data["train"], settings)
    result = score_external(editors, data["train"], yardstick, split, data[split], rows,
                            request, truth_fn, settings).metrics
    checks = threshold_checks(result["told"], config.gate, "edits")
    failed = [c.name for c in checks if not c.passed]
    if as_json:
        out = {"split": split, **result, "gate": {"passed": not failed, "failed": failed}}
        typer.echo(json.dumps(out, indent=2, default=lambda x: np.asarray(x).tolist()))
    else:
        for line in summary_lines(result):
            typer.echo(line)
        typer.echo(format_table(checks))
    if failed:
        typer.echo(f"score: gate FAILED: {', '.join(failed)}", err=True)
        raise typer.Exit(1)
    typer.echo("score: gate passed", err=as_json)


def _read_npz(path: Path, what: str) -> dict:
    import zipfile

    import numpy as np

    from fclf.errors import FclfError

    if not path.is_file():
        raise FclfError(f"{path}: {what} not found")
    try:
        loaded = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        reason = ("not a NumPy file" if "pickled" in str(exc) or "allow_pickle" in str(exc)
                  else str(exc))
        raise FclfError(f"{path}: not a readable {what}: {reason}; expected an .npz archive "
                        "(numpy.savez)") from None
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise FclfError(f"{path}: a single .npy array of shape {loaded.shape}; the {what} is "
                        "an .npz archive of named arrays (numpy.savez(path, edited=..., "
                        "noop=...))")
    with loaded as npz:
        try:
            return {key: npz[key] for key in npz.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            raise FclfError(f"{path}: not a readable {what} ({exc})") from None
