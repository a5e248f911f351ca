"""The `fclf` command: user commands that are not pipeline stages."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from fclf import __version__
from fclf.errors import exit_on_user_error

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)


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


bench_app = typer.Typer(no_args_is_help=True, help="Measure pipeline speed on this machine.")
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


@bench_app.command("train")
@exit_on_user_error
def bench_train_command(
    steps: int = typer.Option(20, min=1, help="timed steps (the median is reported)"),
    batch_size: int = typer.Option(512, min=2),
    dim: int = typer.Option(512, min=2),
    probes: int = typer.Option(1, min=1, help="curl/div probes per point"),
    device: str = typer.Option("auto", help="auto | cpu | cuda"),
    div_estimator: str = typer.Option("corrected", help="corrected | paired"),
) -> None:
    """Samples/s of a full training step (all loss terms, backward, Adam); prints JSON."""
    from fclf.cli.bench_train import bench_train

    if div_estimator not in ("corrected", "paired"):
        raise typer.BadParameter("expected corrected or paired", param_hint="--div-estimator")
    result = bench_train(
        steps=steps, batch_size=batch_size, dim=dim, probes=probes, device=device,
        div_estimator=div_estimator,
    )
    typer.echo(json.dumps(result, indent=2))


@app.command("data-report")
@exit_on_user_error
def data_report_command(
    embeddings: Path = typer.Option(
        Path("data/embeddings"), help="folder with train/val/test.parquet"
    ),
    as_json: bool = typer.Option(False, "--json", help="print JSON instead of a table"),
) -> None:
    """Attribute rates, P(attr | Male/Female), cone cosines and frozen-probe test accuracy."""
    from fclf.data.embeddings_io import read_split
    from fclf.evaluate.data_report import data_report, format_report

    splits = {s: read_split(embeddings / f"{s}.parquet") for s in ("train", "val", "test")}
    report = data_report(splits)
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
) -> None:
    """Exit non-zero, naming each failed check, if the flow collapsed, under-performs
    the `gate` thresholds, or does not reproduce the reference metrics."""
    from fclf.config import load_config
    from fclf.errors import FclfError
    from fclf.evaluate.gate import format_table, run_gate

    def read(path: Path) -> dict:
        try:
            return json.loads(path.read_text())
        except FileNotFoundError:
            raise FclfError(f"{path}: metrics file not found") from None
        except json.JSONDecodeError as exc:
            raise FclfError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None

    gate = load_config(params).gate
    checks = run_gate(read(metrics), gate, read(reference) if reference else None)
    typer.echo(format_table(checks))
    failed = [c.name for c in checks if not c.passed]
    if failed:
        typer.echo(f"gate: FAILED: {', '.join(failed)}", err=True)
        raise typer.Exit(1)
    typer.echo("gate: passed")


@app.command("transfer")
@exit_on_user_error
def transfer_command(
    model: Path = typer.Option(Path("models/fclf.pt"), help="trained model file"),
    embeddings: Path = typer.Option(
        Path("data/embeddings"), help="folder with train/val/test.parquet"
    ),
    image: Path | None = typer.Option(None, help="a new image to edit (embedded with CLIP)"),
    image_id: str | None = typer.Option(None, help="or: an image of the data to edit"),
    split: str = typer.Option("test", help="split of --image-id (train | val | test)"),
    set_: list[str] = typer.Option([], "--set", help="target NAME=0|1 (repeatable)"),
    source_attr: list[str] = typer.Option(
        [], help="source NAME=0|1 to use instead of the probes' reading (repeatable)"
    ),
    steps: int = typer.Option(10, min=1, help="flow steps"),
    step_size: float = typer.Option(0.1, help="flow step size (> 0)"),
    clip: Path | None = typer.Option(
        None, help="CLIP folder for --image (default: the one the embeddings record)"
    ),
    celeba_root: Path | None = typer.Option(
        None, help="folder with img_align_celeba/ (default: the embeddings' metadata)"
    ),
    out: Path | None = typer.Option(None, help="write a PNG strip of the path here"),
    probe_c: float = typer.Option(1.0, help="probes' C (eval.probe_c, > 0)"),
    as_json: bool = typer.Option(False, "--json", help="print only JSON on stdout"),
) -> None:
    """Edit attributes of one face with the trained flow; show each step as the probes'
    read-out and the nearest real face (decoder-free)."""
    from fclf.cli.transfer.command import transfer_from_files

    def note(line: str) -> None:
        typer.echo(line, err=True)

    report = transfer_from_files(
        model, embeddings, image=image, image_id=image_id, split=split, overrides=set_,
        given=source_attr, steps=steps, step_size=step_size, clip=clip,
        celeba_root=celeba_root, want_images=out is not None, probe_c=probe_c, warn=note,
    )
    say = note if as_json else typer.echo
    if as_json:
        typer.echo(json.dumps(report.json, indent=2))
    else:
        typer.echo(report.table)
    t, path = report.timings, report.path
    say(
        f"transfer: edit {t['edit_seconds'] * 1e3:.1f} ms ({path.num_steps} steps: flow, "
        f"probes, nearest among {path.gallery_size} real faces); probes fitted in "
        f"{t['probe_seconds']:.2f} s"
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


def main() -> None:
    app()
