"""`vidvpr eval` and `vidvpr models`."""

from __future__ import annotations

from pathlib import Path

import click

from vidvpr.cli.common import (
    NonEmptyPath,
    emit_json,
    executor_for,
    handle_errors,
    output_options,
    parse_numbers,
    retry_lines,
    scheduler_option,
)
from vidvpr.evaluate.config import DEFAULT_MODEL, INPUT_SIZES, PROTOCOLS, SEQ_SEARCHES, EvalConfig
from vidvpr.evaluate.recall import DEFAULT_NS, UNMATCHED_QUERIES
from vidvpr.models.backends import BACKEND_CHOICES

DEFAULTS = EvalConfig()


def parse_seq_lengths(text: str) -> tuple[int, ...]:
    """'1,5,10,20' -> (1, 5, 10, 20); click.BadParameter for anything but a list of whole numbers."""
    return parse_numbers(text, int, "--seq-len")


def parse_seq_velocity(text: str) -> tuple[float, float]:
    """'0.8..1.25' or '1' (one velocity) -> (low, high)."""
    low, dots, high = text.partition("..")
    try:
        return (float(low), float(high if dots else low))
    except ValueError:
        raise click.BadParameter(f"--seq-velocity takes LOW..HIGH frames per frame (or one number), got {text!r}") \
            from None


@click.command("eval")
@click.argument("manifest_dir", type=click.Path(path_type=Path))
@click.option("--out", "out_dir", required=True, type=NonEmptyPath(path_type=Path),
              help="Output folder: results.csv/.json, predictions/, plots, descriptors/ (the cache), models/.")
@click.option("--enc", "enc_dir", type=click.Path(path_type=Path), default=None,
              help="Encode grid folder (vidvpr encode --out) [default: evaluate the reference views only].")
@click.option("--model", "models", multiple=True, default=(DEFAULT_MODEL,), metavar="NAME[:WEIGHTS]",
              help="Model, optionally with a checkpoint (repeatable; see `vidvpr models`).")
@click.option("--database", "protocol", default=DEFAULTS.protocol, type=click.Choice(PROTOCOLS),
              help="same: database and queries from the same cell; reference: a clean map queried by compressed video.")
@click.option("--input-size", default=DEFAULTS.input_size, type=click.Choice(INPUT_SIZES),
              help="Feed frames at the cell's own size, or upsampled back to the view's.")
@click.option("--cells", default=None, metavar="CELL,...",
              help="Evaluate only these cells, e.g. reference,360p/qp40 [default: all].")
@click.option("--recall-at", default=None, metavar="N,...",
              help=f"Recall@N for these N, at most the database size [default: {','.join(map(str, DEFAULT_NS))}, "
                   "those up to the database size].")
@click.option("--unmatched-queries", default=DEFAULTS.unmatched_queries, type=click.Choice(UNMATCHED_QUERIES),
              help="Queries without a positive within the threshold: exclude them from recall (as MSLS) or count them "
                   "as misses (as pytorch-NetVlad, VPR-methods-evaluation, LoQI-VPR); see the README.")
@click.option("--threshold", "thresholds", default=None, metavar="METRES,...",
              help="Distance thresholds (m), at most the manifest's radius [default: the manifest's radius].")
@click.option("--index", default=None, help="faiss index factory string, e.g. IVF1024,PQ64 [default: exact L2].")
@click.option("--batch-size", default=DEFAULTS.batch_size, type=int, help="Images per forward pass.")
@click.option("--device", default=DEFAULTS.device, help="cpu, cuda or mps (mixed precision on cuda).")
@click.option("--backend", default=DEFAULTS.backend, type=click.Choice(BACKEND_CHOICES),
              help="What runs the models: torch, or an exported ONNX graph on ONNX Runtime (onnx) or OpenVINO "
                   "(openvino), CPU only; auto: the fastest installed for --device, else torch.")
@click.option("--pca-dim", type=int, default=None, help="PCA-whiten descriptors to this size, fitted on the database.")
@click.option("--cache", "cache_dir", type=click.Path(path_type=Path), default=None,
              help="Descriptor cache folder, shareable between evaluations [default: OUT/descriptors].")
@click.option("--root", type=click.Path(path_type=Path), default=None, help="Dataset root [default: the manifest's].")
@click.option("--save-preds", type=int, default=0, help="Write a strip of N queries and their top 5 per cell.")
@click.option("--seq-len", "seq_lens", default=",".join(map(str, DEFAULTS.seq_lens)), metavar="L,...",
              help="Also match each query's sequence of L frames (it and the L-1 before it in its recording and "
                   "view; SeqSLAM lines through the distance matrix), e.g. 1,5,10,20; 1 is single frames.")
@click.option("--seq-velocity", default="..".join(f"{v:g}" for v in DEFAULTS.seq_velocity), metavar="LOW..HIGH",
              help="Relative speeds of the lines, database frames per query frame (one number: that speed only).")
@click.option("--seq-reverse", is_flag=True, help="Also lines through the database the other way.")
@click.option("--seq-normalise", is_flag=True,
              help="SeqSLAM's local contrast normalisation of the distances along the database.")
@click.option("--seq-search", default=DEFAULTS.seq_search, type=click.Choice(SEQ_SEARCHES),
              help="full: every line, in blocks (exact); restricted: a sketched search on every 4th query "
                   "proposes places, lines there are scored exactly (see tools/bench_seq.py).")
@scheduler_option
@output_options
@handle_errors
def eval_command(manifest_dir: Path, out_dir: Path, enc_dir: Path | None, models: tuple[str, ...], protocol: str,
                 input_size: str, cells: str | None, recall_at: str, thresholds: str | None, index: str | None,
                 batch_size: int, device: str, backend: str, pca_dim: int | None, cache_dir: Path | None,
                 root: Path | None, save_preds: int, unmatched_queries: str, seq_lens: str, seq_velocity: str, seq_reverse: bool,
                 seq_normalise: bool, seq_search: str, scheduler: str | None, quiet: bool, as_json: bool) -> None:
    """Recall@N of place recognition across the encode grid: one row per model × cell × threshold ×
    sequence length, with predictions, the VPR-Bench measures (precision-recall, AUC-PR, recall at
    100% precision, extraction ms per image, descriptor bytes), plots and a printed table."""
    from vidvpr.cli.common import parse_names
    from vidvpr.core.progress import progress_bar
    from vidvpr.evaluate.rerun import evaluate
    from vidvpr.evaluate.results import recall_table, trained_on_notes

    config = EvalConfig(models=models, enc_dir=enc_dir, protocol=protocol, input_size=input_size,
                        cells=parse_names(cells, "--cells"),
                        recall_at=parse_numbers(recall_at, int, "--recall-at"),
                        thresholds_m=parse_numbers(thresholds, float, "--threshold"), index=index,
                        batch_size=batch_size,
                        device=device, backend=backend, pca_dim=pca_dim, cache_dir=cache_dir, root=root,
                        save_preds=save_preds,
                        unmatched_queries=unmatched_queries, seq_lens=parse_seq_lengths(seq_lens),
                        seq_velocity=parse_seq_velocity(seq_velocity), seq_reverse=seq_reverse, seq_normalise=seq_normalise,
                        seq_search=seq_search)
    with executor_for(scheduler, quiet) as executor, progress_bar(None, "eval", unit="img", quiet=quiet) as bar:
        result = evaluate(manifest_dir, out_dir, config, on_start=lambda total: bar.reset(total=total),
                          on_images=bar.update, on_status=bar.set_description, executor=executor)
    if as_json:
        emit_json({"results": str(result.results_csv), "results_json": str(result.results_json),
                   "plots": [str(p) for p in result.plots], "forward_images": result.forward_images,
                   "cache_bytes": result.cache_bytes, "rows": [row.model_dump(mode="json") for row in result.rows],
                   "skipped": result.skipped, "retried": retry_lines(executor),
                   "sequences": result.sequences.model_dump(mode="json") if result.sequences else None,
                   "trained_on": {str(m.get("label")): m.get("trained_on") for m in result.models}})
    elif not quiet:
        for line in recall_table(result.rows):
            click.echo(line)
        for note in trained_on_notes(result.models):
            click.echo(f"note: {note}")
        done = "already done, skipped: " if result.skipped else ""
        click.echo(f"{done}results {result.results_csv}; plots {', '.join(str(p) for p in result.plots) or 'none'}; "
                   f"{result.forward_images} images through the models, descriptor cache "
                   f"{result.cache_bytes / 1e6:.1f} MB", err=True)


@click.command("models")
@click.option("--json", "as_json", is_flag=True, help="Print the list as JSON.")
@handle_errors
def models_command(as_json: bool) -> None:
    """List the models vidvpr can load: name, descriptor size, where the weights come from."""
    from vidvpr.models import list_models

    infos = list_models()
    if as_json:
        emit_json([info.model_dump() for info in infos])
        return
    for info in infos:
        click.echo(f"{info.name:30} {info.descriptor_dim:6d}-D  {info.description}")
        click.echo(f"{'':30} weights: {info.weights}")
