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
    metrics: Path = typer.Option(
        Path("metrics/transfer.json"), help="the pipeline's metrics file: its FCLF, best "
        "baseline and oracle on the same split are shown beside your editor (skipped, with a "
        "note, when absent)"),
    as_json: bool = typer.Option(False, "--json", help="print only JSON on stdout (floats to 4 "
                                 "significant digits, null where a value cannot be computed)"),
) -> None:
    """Score your own editor on FCLF's yardstick: same judge, rows, requests, ground truth,
    realism and collapse measures and gate. Exit 1 when the gate fails.

    Read eval/protocol_<split>_told.npz: `source_rows` (rows of
    data/embeddings/<split>.parquet), `request` (N, k: the value each requested attribute
    must take, -1 = keep the source's) and `source_attributes` (the labels). Edit each row so
    that the requested attributes change and nothing else, save the edits in that order as
    'edited', and your editor's answer to "change nothing" as 'noop'. For blind mode,
    eval/protocol_<split>_blind.npz has no labels: your editor reads the sources itself.

    The text output starts with the headline (counterfactual relative error, told; blind
    beside it) and a legend, then your editor, the oracle and, from --metrics, the
    workspace's FCLF, best baseline and oracle. With --json: `headline` (your editor's
    summary per mode), `workspace` (those rows from --metrics), the full `told` / `blind`
    blocks (their `comparisons`: paired differences, your edits minus each editor of this
    run, with 95 % intervals) and `gate`.

    Exit codes: 0 the gate passed, 1 the gate failed, 2 bad input (a missing or malformed
    file or option: one line on stderr, no traceback).
    """
    import numpy as np

    from fclf.config import load_config
    from fclf.data.embeddings_io import read_split
    from fclf.errors import FclfError
    from fclf.evaluate.configured import protocol_settings
    from fclf.evaluate.gate import format_table, threshold_checks
    from fclf.evaluate.protocol import Yardstick, read_edits_file, score_external
    from fclf.evaluate.report import score_lines, summary_row, workspace_rows
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
    workspace, note = _workspace_metrics(metrics, split, len(rows))
    for mode in ("told", "blind"):  # no trajectories: the curve's values are null, not absent
        block = result.get(mode, {}).get("edits")
        if block is not None and block.get("curve") is None:
            block["curve"] = dict.fromkeys(("pareto_area_linear", "pareto_area_mlp",
                                            "at_oracle_movement", "at_fclf_movement"))
    if as_json:
        out = {
            "split": split,
            "headline": {mode: (summary_row(result[mode]["edits"])
                                if "edits" in result.get(mode, {}) else None)
                         for mode in ("told", "blind")},
            "workspace": {"metrics_file": str(metrics), "note": note,
                          **(workspace_rows(workspace) if workspace
                             else {"told": None, "blind": None})},
            **result, "gate": {"passed": not failed, "failed": failed},
        }
        typer.echo(json.dumps(rounded(out), indent=2,
                              default=lambda x: np.asarray(x).tolist()))
        if note:
            typer.echo(f"score: {note}", err=True)
    else:
        for line in score_lines(result, workspace, str(metrics)):
            typer.echo(line)
        if note:
            typer.echo(f"score: {note}")
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


def _workspace_metrics(path: Path, split: str, num_rows: int) -> tuple[dict | None, str | None]:
    """One split of the pipeline's metrics file, or None and the one-line reason why not."""
    if not path.is_file():
        return None, (f"{path} not found (run `dvc repro evaluate-transfer`): no comparison "
                      "with the workspace's editors")
    try:
        split_metrics = json.loads(path.read_text()).get(split)
    except (OSError, UnicodeDecodeError, ValueError, AttributeError) as exc:
        return None, f"{path}: not a readable metrics file ({exc}); no comparison rows"
    if not isinstance(split_metrics, dict) or not isinstance(split_metrics.get("told"), dict):
        return None, f"{path} has no {split!r} results: no comparison rows"
    scored = split_metrics["told"].get("num_samples")
    if scored is not None and scored != num_rows:
        return None, (f"{path} scored {scored} rows of {split}, this protocol has {num_rows}: "
                      "not comparable, no comparison rows")
    return split_metrics, None


def rounded(data, significant: int = 4):
    """`data` made JSON-ready: floats to `significant` significant digits (non-finite ones
    become null), NumPy scalars and arrays to Python ones; ints, bools, strings, None as they
    are. Walks dicts, lists and tuples."""
    import math

    import numpy as np

    if isinstance(data, dict):
        return {str(key): rounded(value, significant) for key, value in data.items()}
    if isinstance(data, (list, tuple, np.ndarray)):
        return [rounded(value, significant) for value in data]
    if isinstance(data, (bool, np.bool_)):
        return bool(data)
    if isinstance(data, (int, np.integer)):
        return int(data)
    if isinstance(data, (float, np.floating)):
        value = float(data)
        return float(f"{value:.{significant}g}") if math.isfinite(value) else None
    return data
