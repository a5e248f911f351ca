"""The `fclf` command: user commands that are not pipeline stages."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from fclf import __version__
from fclf.cli.help_format import TidyTyper
from fclf.cli.score_command import score_command
from fclf.errors import exit_on_user_error

app = TidyTyper(add_completion=False, no_args_is_help=True, help=__doc__)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"fclf {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="print the version and exit"
    ),
) -> None:
    """Function-Contrastive Latent Fields on CLIP face embeddings."""


bench_app = TidyTyper(no_args_is_help=True, help="Measure pipeline speed on this machine.")
app.add_typer(bench_app, name="bench")


@bench_app.command("embed")
@exit_on_user_error
def bench_embed_command(
    batches: int = typer.Option(5, min=1, help="timed batches per precision (median is used)"),
    batch_size: int = typer.Option(32, min=1, help="images per batch"),
    device: str = typer.Option("auto", help="auto | cpu | cuda"),
    workers: int = typer.Option(2, min=0, help="image decoding threads (0 = in-process)"),
    precision: list[str] = typer.Option(["fp32", "bf16"], help="fp32 and/or bf16 (repeatable)"),
) -> None:
    """Images/s of the embed stage (JPEG -> CLIP ViT-B/32, random weights); prints JSON."""
    from fclf.cli.bench_embed import bench_embed

    if device not in ("auto", "cpu", "cuda"):
        raise typer.BadParameter("expected auto, cpu or cuda", param_hint="--device")
    if not set(precision) <= {"fp32", "bf16"}:
        raise typer.BadParameter("expected fp32 or bf16", param_hint="--precision")
    result = bench_embed(batches, batch_size, tuple(precision), device, workers)
    typer.echo(json.dumps(result, indent=2))


@bench_app.command("evaluate")
def bench_evaluate_command(
    repeats: int = typer.Option(3, min=1, help="timed runs (median is reported)"),
    threads: int | None = typer.Option(None, min=1, help="torch threads (default: all cores)"),
) -> None:
    """Seconds of the full transfer evaluation on a synthetic 20k-point split; prints JSON."""
    from fclf.cli.bench_evaluate import bench_evaluate

    typer.echo(json.dumps(bench_evaluate(repeats, threads=threads), indent=2))


@bench_app.command("interactive")
@exit_on_user_error
def bench_interactive_command(
    workspace: Path = typer.Option(Path("."), metavar="FOLDER",
                                   help="a workspace after `dvc repro`"),
    repeats: int = typer.Option(3, min=1, help="timed runs of each (median is reported)"),
    split: str = typer.Option("test", metavar="val|test", help="the split edited and scored"),
) -> None:
    """Seconds `fclf transfer` and `fclf score` take here (fresh processes, and one transfer
    in-process after a warm-up) against their targets (1 s, 10 s); prints JSON."""
    from fclf.cli.bench_interactive import bench_interactive

    typer.echo(json.dumps(bench_interactive(workspace, repeats, split), indent=2))


@bench_app.command("train")
@exit_on_user_error
def bench_train_command(
    steps: int = typer.Option(20, min=1, help="timed steps (the median is reported)"),
    batch_size: int = typer.Option(512, min=2),
    dim: int = typer.Option(512, min=2),
    probes: int = typer.Option(1, min=1, help="curl/div probes per point"),
    device: str = typer.Option("auto", help="auto | cpu | cuda"),
    div_estimator: str = typer.Option("corrected", help="corrected | paired"),
    objective: list[str] = typer.Option(
        ["contrastive", "flow_matching"], help="objective families to time (repeatable)"),
    num_steps: int = typer.Option(10, min=1, help="flow.num_steps (contrastive unrolls them)"),
    checkpoint_gradients: bool = typer.Option(
        False, "--checkpoint-gradients", help="recompute the flow steps in backward, as "
        "train.checkpoint_gradients: true does (less memory)"),
) -> None:
    """Samples/s of a full training step per objective (all loss terms, backward, Adam);
    prints JSON."""
    from fclf.cli.bench_train import bench_train
    from fclf.config import OBJECTIVES

    if div_estimator not in ("corrected", "paired"):
        raise typer.BadParameter("expected corrected or paired", param_hint="--div-estimator")
    if not set(objective) <= set(OBJECTIVES):
        raise typer.BadParameter(f"expected {' or '.join(OBJECTIVES)}", param_hint="--objective")
    result = bench_train(
        steps=steps, batch_size=batch_size, dim=dim, probes=probes, device=device,
        div_estimator=div_estimator, objectives=tuple(objective), num_steps=num_steps,
        checkpoint_gradients=checkpoint_gradients,
    )
    typer.echo(json.dumps(result, indent=2))


@app.command("results")
@exit_on_user_error
def results_command(
    metrics: Path = typer.Option(Path("metrics/transfer.json"), help="the evaluation's metrics"),
    split: str = typer.Option("test", help="val | test"),
) -> None:
    """The Results tables (README, docs/results.md) from metrics/transfer.json: every editor
    (told mode, blind error beside it) with 95 % intervals, FCLF's seeds against the best
    baseline, and FCLF's rank among its peers."""
    from fclf.errors import FclfError
    from fclf.evaluate.report import results_markdown

    if not metrics.is_file():
        raise FclfError(f"{metrics}: not found; run `dvc repro`")
    data = json.loads(metrics.read_text(encoding="utf-8"))
    if not isinstance((data.get(split) or {}).get("told"), dict):
        raise FclfError(f"{metrics}: no '{split}.told' block; rerun the evaluate-transfer stage")
    typer.echo(results_markdown(data, split))


@app.command("thresholds")
@exit_on_user_error
def thresholds_command(
    split: str = typer.Option("val", help="the split thresholds are chosen on: val"),
    embeddings: Path = typer.Option(Path("data/embeddings"), help="folder with the splits"),
    model: Path = typer.Option(Path("models/fclf.pt"), help="FCLF's model file"),
    judge: Path = typer.Option(Path("models/judge.pt"), help="the fit-judge stage's file"),
    peers: Path = typer.Option(Path("models/peers.pt"), help="the train-baselines stage's file"),
    params: Path = typer.Option(Path("params.yaml"), help="params file (the eval thresholds)"),
) -> None:
    """Where honest editors (oracle, FCLF, the peers, the reference) and cheats (prototype
    pulls, snapping, noise, overshoot, a probe walk) fall on val for every collapse and
    realism measure, beside its threshold. Exit 1 if a threshold refuses an honest editor or
    lets a cheat through."""
    from fclf.cli.thresholds import format_rows, separation_problems, threshold_rows
    from fclf.config import load_config
    from fclf.errors import FclfError

    if split == "test":
        raise FclfError("--split test: thresholds are chosen on val; test only reports")
    config = load_config(params)
    rows = threshold_rows(config, embeddings, model, judge, peers, split)
    typer.echo(format_rows(rows, config))
    problems = separation_problems(rows, config)
    for problem in problems:
        typer.echo(f"thresholds: {problem}", err=True)
    if problems:
        raise typer.Exit(1)


@app.command("compare")
@exit_on_user_error
def compare_command(
    experiments: list[str] = typer.Argument(
        None, help="experiment names (or workspace, a branch, a rev); default: all"),
) -> None:
    """Headline metrics (metrics/headline.json) of the workspace, its baseline and each
    experiment, from `dvc exp show --json`: one line per run, COLLAPSED where it collapsed."""
    from fclf.cli.compare import compare

    typer.echo(compare(experiments or ()))


@app.command("data-report")
@exit_on_user_error
def data_report_command(
    embeddings: Path = typer.Option(
        Path("data/embeddings"), help="folder with train/val/test.parquet"
    ),
    as_json: bool = typer.Option(False, "--json", help="print JSON instead of a table"),
) -> None:
    """Attribute rates, P(attr | Male/Female), cone cosines, identity retrieval, probe accuracy,
    the linear-vs-MLP judge gap and (synthetic data) how far straight lines miss the truth."""
    from fclf.data.embeddings_io import read_split
    from fclf.evaluate.data_report import data_report, format_report

    splits = {s: read_split(embeddings / f"{s}.parquet") for s in ("train", "val", "test")}
    truth_fn = None
    if (embeddings / "truth.npz").exists():
        from fclf.data.truth import read_truth

        truth = read_truth(embeddings / "truth.npz", list(splits["train"].attribute_names))

        def truth_fn(rows, targets):
            return truth.counterfactual("test", rows, targets)

    report = data_report(splits, truth=truth_fn)
    typer.echo(json.dumps(report, indent=2) if as_json else format_report(report))


@app.command("gate")
@exit_on_user_error
def gate_command(
    metrics: Path = typer.Option(Path("metrics/transfer.json"), help="metrics to judge"),
    params: Path = typer.Option(Path("params.yaml"), help="params file with the `gate` section"),
    reference: Path | None = typer.Option(
        None, help="metrics to reproduce (e.g. the committed ones); each number must match "
        "within gate.reproduce_tolerance"
    ),
    no_workspace_check: bool = typer.Option(
        False, "--no-workspace-check", help="judge the metrics file on its own: skip checking "
        "it and models/fclf.pt against the dvc.lock next to --params"
    ),
) -> None:
    """Exit non-zero, naming each failed check, if the flow collapsed, under-performs
    the `gate` thresholds, or does not reproduce the reference metrics. With a dvc.lock
    next to --params, the metrics must also be the ones it records and the model it
    records must be in the workspace (else: run `dvc repro`)."""
    from fclf.config import load_config
    from fclf.errors import FclfError
    from fclf.evaluate.gate import format_table, run_gate, workspace_checks

    def read(path: Path) -> dict:
        try:
            return json.loads(path.read_text())
        except FileNotFoundError:
            raise FclfError(f"{path}: metrics file not found") from None
        except json.JSONDecodeError as exc:
            raise FclfError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None

    gate = load_config(params).gate
    checks = run_gate(read(metrics), gate, read(reference) if reference else None)
    lock = params.parent / "dvc.lock"
    if not no_workspace_check and lock.is_file():
        checks = workspace_checks(metrics, lock) + checks
    typer.echo(format_table(checks))
    failed = [c.name for c in checks if not c.passed]
    if failed:
        for check in checks:
            if not check.passed and check.name.startswith("workspace "):
                typer.echo(f"gate: {check.value}", err=True)
        typer.echo(f"gate: FAILED: {', '.join(failed)}", err=True)
        raise typer.Exit(1)
    typer.echo("gate: passed")


app.command("score")(score_command)


@app.command("transfer")
@exit_on_user_error
def transfer_command(
    model: Path = typer.Option(
        Path("models/fclf.pt"), metavar="FILE", help="the trained model file"),
    embeddings: Path = typer.Option(
        Path("data/embeddings"), metavar="FOLDER", help="folder with train/val/test.parquet"),
    image: Path | None = typer.Option(
        None, metavar="FILE", help="a new image to edit (embedded with the local CLIP)"),
    image_id: str | None = typer.Option(
        None, metavar="ID", help="or: an image of the data to edit, e.g. 022163.jpg"),
    split: str = typer.Option(
        "test", metavar="train|val|test", help="the split --image-id is in"),
    set_: list[str] = typer.Option(
        [], "--set", metavar="NAME=0|1",
        help="a target value (repeatable): the attributes to change"),
    source_attr: list[str] = typer.Option(
        [], metavar="NAME=0|1",
        help="a source value to use instead of the probes' reading (repeatable). The flow is "
        "told it, so it decides what --set changes and moves nothing by itself: an attribute "
        "given against the probes' reading and not --set stays as the face has it, and the "
        "target line says so"),
    steps: int | None = typer.Option(
        None, min=1, metavar="N",
        help="flow steps (default: the horizon recorded in the model file)"),
    step_size: float | None = typer.Option(
        None, metavar="X",
        help="flow step size, > 0 (default: the one recorded in the model file)"),
    clip: Path | None = typer.Option(
        None, metavar="FOLDER",
        help="CLIP folder for --image (default: the one the embeddings record)"),
    celeba_root: Path | None = typer.Option(
        None, metavar="FOLDER",
        help="folder with img_align_celeba/ (default: the embeddings' metadata)"),
    out: Path | None = typer.Option(
        None, metavar="FILE",
        help="write a figure of the path here: .png, .jpg/.jpeg, .pdf or .svg, by the suffix"),
    probe_c: float = typer.Option(
        1.0, metavar="C", help="C of the read-out probes fitted on train (> 0)"),
    probes: Path = typer.Option(
        Path("models/probes.pt"), metavar="FILE",
        help="the read-out probes the pipeline fitted (fit-judge stage); used when they were "
        "fitted on this train split with this --probe-c, else the probes are fitted anew"),
    as_json: bool = typer.Option(False, "--json", help="print only JSON on stdout"),
) -> None:
    """Edit attributes of one face with the trained flow; show each step as the probes'
    read-out and the nearest real face (decoder-free).

    The source's attributes are the probes' reading, or the --source-attr values where given;
    the target is that source with the --set values. The flow is told both, so it changes
    exactly the --set attributes (delta = target - source) and no head of the field pushes
    the others. A --source-attr value that the probes read the other way is not silently
    acted on: the target line (and, with --json, stderr and source.overridden) names it and
    says what the flow does with it. Details: docs/transfer.md.
    """
    from fclf.cli.transfer.command import transfer_from_files
    from fclf.cli.transfer.edit import reach_lines
    from fclf.cli.transfer.output import override_notes

    def note(line: str) -> None:
        typer.echo(line, err=True)

    if out is not None:
        from fclf.cli.transfer.figure import out_format

        out_format(out)  # a suffix it cannot write fails now, not after the edit
    report = transfer_from_files(
        model, embeddings, image=image, image_id=image_id, split=split, overrides=set_,
        given=source_attr, steps=steps, step_size=step_size, clip=clip,
        celeba_root=celeba_root, want_images=out is not None, probe_c=probe_c, probes=probes,
        warn=note,
    )
    say = note if as_json else typer.echo
    if as_json:
        typer.echo(json.dumps(report.json, indent=2))
        for line in override_notes(report.source, report.json["target"]):
            note(f"transfer: given against the probes: {line}")
    else:
        typer.echo(report.table)
    for line in reach_lines(report.reach):
        note(line)
    t, path = report.timings, report.path
    say(
        f"transfer: edit {t['edit_seconds'] * 1e3:.1f} ms ({path.num_steps} steps: flow, "
        f"probes, nearest among {path.gallery_size} real faces); probes "
        f"{report.probe_source} in {t['probe_seconds']:.2f} s"
        + (f"; image embedded in {t['embed_seconds']:.2f} s" if "embed_seconds" in t else "")
    )
    if out is not None:
        from fclf.cli.transfer.figure import write_transfer_figure

        if write_transfer_figure(report, out):
            say(f"transfer: wrote {out}")
        else:
            note(
                f"transfer: the embeddings are synthetic, without images: {out} shows the "
                "probe read-outs along the path instead of faces"
            )


sweep_app = TidyTyper(
    no_args_is_help=True,
    help="Grids of `dvc exp` runs over many machines: plan a shard, work it (run and push "
    "each experiment), report (pull all, rank on val, flag collapse). See docs/sweeps.md.")
app.add_typer(sweep_app, name="sweep")
def _sweep_commands(what: str):
    """git and dvc in the project around the current folder, for `fclf.sweep`."""
    from fclf.cli.dvc_locate import dvc_executable, find_dvc_root
    from fclf.sweep.dvc_commands import Commands

    cwd = Path.cwd().resolve()
    return Commands.at(find_dvc_root(cwd), dvc_executable(), cwd, what)


_SWEEP_FILE = typer.Argument(..., help="sweep file (YAML: params grid, select, sample, seed)")
_SHARD = typer.Option("1/1", "--shard", help="I/N: the I-th of N disjoint shards (1-based)")
_PARAMS = typer.Option(Path("params.yaml"), help="params file the experiments start from")


@sweep_app.command("plan")
@exit_on_user_error
def sweep_plan_command(
    sweep_file: Path = _SWEEP_FILE,
    shard_spec: str = _SHARD,
    params: Path = _PARAMS,
    queue: bool = typer.Option(False, "--queue", help="queue them in DVC's task queue "
                               "instead of printing them (run with `dvc queue start`)"),
) -> None:
    """Print (or queue) the `dvc exp run --queue` commands of one shard. Every machine
    computes the same shards from the sweep file alone."""
    import shlex

    from fclf.sweep.spec import load_sweep, parse_shard, shard

    index, count = parse_shard(shard_spec)
    sweep = load_sweep(sweep_file, params)
    grid = sweep.points()
    points = shard(grid, index, count)
    commands = _sweep_commands("fclf sweep plan --queue") if queue else None
    for point in points:
        if commands is not None:
            commands.queue_experiment(point.name, point.set_args())
            typer.echo(f"queued {point.name}")
        else:
            typer.echo(shlex.join(["dvc", "exp", "run", "--queue", "-n", point.name,
                                   *point.set_args()]))
    typer.echo(f"# sweep {sweep.name}: shard {index}/{count} holds {len(points)} of "
               f"{len(grid)} grid points ({sweep.grid_size} in the full grid)",
               err=True)


@sweep_app.command("work")
@exit_on_user_error
def sweep_work_command(
    sweep_file: Path = _SWEEP_FILE,
    shard_spec: str = _SHARD,
    jobs: int = typer.Option(1, "--jobs", "-j", min=1, help="local queue workers"),
    push: str | None = typer.Option(
        None, "--push", help="git remote (name or URL) every finished experiment is pushed to, "
        "its outputs to the DVC remote; omit to keep them in this clone"),
    dvc_remote: str | None = typer.Option(
        None, help="DVC remote for the outputs (default: the repository's default remote)"),
    params: Path = _PARAMS,
    logs: Path = typer.Option(Path("logs/sweeps"), help="folder for failed runs' logs"),
    poll: float = typer.Option(
        5.0, min=0.1, help="seconds between checks for finished experiments (git refs); "
        "DVC's queue status is read every 30 s"),
) -> None:
    """Queue this shard, run it with J local DVC queue workers and push each finished
    experiment. Re-running skips what is already pushed, so a pre-empted job can restart.
    Exit 1 when a run failed (the others still ran); its log is listed."""
    import signal

    from fclf.sweep.spec import load_sweep, parse_shard
    from fclf.sweep.work import summary, work_shard

    index, count = parse_shard(shard_spec)
    sweep = load_sweep(sweep_file, params)
    commands = _sweep_commands("fclf sweep work")

    def stop(signum, frame):  # SIGTERM (scheduler pre-emption) acts like Ctrl-C
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        result = work_shard(sweep, index, count, commands, jobs, push, dvc_remote,
                            logs / sweep.name, lambda line: typer.echo(line, err=True), poll)
    except KeyboardInterrupt:
        commands.stop_workers()
        typer.echo("sweep work: interrupted; the queue workers were stopped. Re-run the same "
                   "command to go on: pushed experiments are skipped.", err=True)
        raise typer.Exit(130) from None
    for line in summary(result, push):
        typer.echo(line)
    if not result.ok:
        raise typer.Exit(1)


@sweep_app.command("report")
@exit_on_user_error
def sweep_report_command(
    sweep_file: Path = _SWEEP_FILE,
    remote: str = typer.Option("origin", help="git remote to pull the experiments from"),
    local: bool = typer.Option(False, "--local", help="pull nothing: rank this clone's "
                               "experiments only"),
    dvc_remote: str | None = typer.Option(None, help="DVC remote to pull outputs from"),
    no_cache: bool = typer.Option(False, "--no-cache", help="pull git refs and metrics only, "
                                  "not the experiments' outputs (models, edits)"),
    out: Path | None = typer.Option(None, help="output folder (default: sweeps/<name>)"),
    params: Path = _PARAMS,
) -> None:
    """Pull every experiment of the sweep, then write leaderboard.md/.csv (ranked on val,
    test shown, collapse flagged, each grid point once) and pareto.png/.csv (flip vs
    preservation per run, collapsed runs marked)."""
    from fclf.cli.compare import collect_runs, exp_show_json
    from fclf.config import load_config
    from fclf.evaluate.configured import selection_rule
    from fclf.sweep.report import sweep_report
    from fclf.sweep.spec import load_sweep

    sweep = load_sweep(sweep_file, params)
    rule = selection_rule(load_config(params))
    commands = _sweep_commands("fclf sweep report")
    folder = out or Path("sweeps") / sweep.name
    report = sweep_report(sweep, commands, folder, None if local else remote, dvc_remote,
                          not no_cache, lambda line: typer.echo(line, err=True),
                          lambda root: collect_runs(exp_show_json(root)), rule)
    typer.echo(report.markdown)
    typer.echo("wrote " + ", ".join(str(path) for path in report.files), err=True)


_PASSTHROUGH = {"allow_extra_args": True, "ignore_unknown_options": True}


@app.command("plots", context_settings=_PASSTHROUGH)
def plots_command(
    context: typer.Context,
    action: str = typer.Argument(..., help="show | diff (as in `dvc plots ACTION`)"),
) -> None:
    """`dvc plots show|diff ...` with Vega inlined: the HTML works offline.

    Every other argument goes to DVC unchanged, e.g. `fclf plots diff collapsed fixed
    -o dvc_plots`. DVC's own pages load Vega from a CDN and are blank without network.
    """
    from fclf.cli.offline_plots import run_dvc_plots

    if action not in ("show", "diff"):
        raise typer.BadParameter("expected show or diff", param_hint="ACTION")
    raise typer.Exit(run_dvc_plots(action, list(context.args)))


def main() -> None:
    app()
