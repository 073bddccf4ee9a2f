"""The pipeline's HTML report: key figures as tables and the dashboard's figures, inline."""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from db import queries, session_scope
from nas.results import Job, SplitResult
from predictor import figures as shared  # the dashboard's figures (/ui): the report shows the same
from predictor import load_lut
from predictor.errors import PredictorError
from predictor.latency import DeviceLUT


def write_report(out: Path, db: str, devices: Sequence[str], device: str, space: str, jobs: Sequence[Job]) -> Path:
    """``out/index.html`` with the tables' heat maps, predictor quality and the searches; returns its path.

    The figures are the dashboard's (``predictor.figures``, served at ``/ui``), inline.
    """
    stored_jobs = [job.model_dump(mode="json", by_alias=True) for job in jobs]
    shown: list[tuple[str, str]] = []
    predictor_rows: list[dict[str, Any]] = []
    with session_scope(db) as session:
        runtimes: dict[str, set[str]] = {}
        for run in queries.list_runs(session):
            runtimes.setdefault(run.device.name, set()).add(shared.runtime(run.environment or {}, run.status))
        runtime = {name: ", ".join(sorted(kinds)) for name, kinds in runtimes.items()}
        for name in devices:
            lut = measured_lut(session, name, space)
            shown.append((f"Latency table of {name} ({lut.predictor})",
                          shared.heatmap_svg(lut, scenario={"runtime": runtime.get(name)})))
            stored = [{"kind": r.kind, "version": r.version, "metrics": r.metrics} for r in
                      sorted(queries.latest_predictors(session, device=name, space=space), key=lambda r: r.kind)]
            if stored:
                shown.append((f"Held-out quality of the predictors of {name}",
                              shared.quality_svg(stored, device=name, space=space)))
            predictor_rows += predictor_table_rows(session, name, space)
        scatter = model_predictions(session, device, space)
        pairs = {(j.config.head_device, j.config.tail_device) for j in jobs if isinstance(j.result, SplitResult)}
        luts = {d: load_lut(session, device=d, space=space) for pair in pairs for d in pair}
    if scatter["measured"]:
        shown.append(("Predicted vs measured latency of whole architectures and heads",
                      shared.predicted_measured_svg(scatter, title=f"{device}: measured models and heads")))
    for job, stored_job in zip(jobs, stored_jobs, strict=True):
        if job.result is None:
            continue
        scenario = shared.job_scenario(stored_job, runtime)
        shown.append((f"Convergence of the {job.method} search", shared.convergence_svg(stored_job, scenario=scenario)))
        if isinstance(job.result, SplitResult):  # one split point (not a topology's chain or mesh)
            layers = shared.answer_layers(stored_job, luts[job.config.head_device], luts[job.config.tail_device])
            shown.append((f"The {job.method} answer per layer",
                          shared.layers_svg(stored_job, layers, scenario=scenario)))
    finished = [j for j in stored_jobs if j.get("result")]
    if finished:
        shown.append(("Accuracy vs latency of the searched architectures", shared.accuracy_latency_svg(finished)))
    scenario_text = shared.scenario_line(shared.job_scenario(finished[0], runtime)) if finished else ""
    index = out / "index.html"
    index.write_text(render_index(space, device, predictor_rows, jobs, shown, scenario=scenario_text))
    summary = {"predictors": predictor_rows, "jobs": stored_jobs}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return index


def measured_lut(session: Any, device: str, space: str) -> DeviceLUT:
    """The device's table as measured (lookup, gaps filled by the best other kind) for the heat map."""
    try:
        return load_lut(session, device=device, space=space, kind="lookup")
    except PredictorError:
        return load_lut(session, device=device, space=space)


def predictor_table_rows(session: Any, device: str, space: str) -> list[dict[str, Any]]:
    rows = []
    for row in sorted(queries.latest_predictors(session, device=device, space=space), key=lambda r: r.kind):
        fit = row.metrics.get("fit", {})
        protocols = row.metrics.get("protocols", {})
        # the most telling held-out protocol that has data: whole models, else summed tables, else entries
        protocol = next((p for p in ("model", "arch-sum", "entry") if (protocols.get(p) or {}).get("n")), None)
        best = protocols.get(protocol, {}) if protocol else {}
        rows.append({
            "device": device, "kind": row.kind, "version": row.version,
            "pi_gflops": fit.get("pi_gflops"), "r2": fit.get("r2"),
            "protocol": protocol,
            "mape": best.get("mape"), "within_10": best.get("within_10"), "spearman": best.get("spearman"),
        })
    return rows


def model_predictions(session: Any, device: str, space_name: str) -> dict[str, Any]:
    """Measured whole-model and head latencies with each fitted kind's prediction of them."""
    rows = queries.latest_measurements(session, device=device, space=space_name, target="model")
    luts = {}
    for fitted in queries.latest_predictors(session, device=device, space=space_name):
        try:
            luts[fitted.kind] = load_lut(session, device=device, space=space_name, kind=fitted.kind)
        except PredictorError:
            continue
    models = [(row.key.split("/", 1)[1], row.latency_ms) for row in rows.values()]
    return shared.model_predictions(models, luts, space_name)


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return html.escape(str(value))


def render_index(
    space: str, device: str, predictors: list[dict[str, Any]], jobs: Sequence[Job], figures: list[tuple[str, str]],
    *, scenario: str = "",
) -> str:
    """The report page: the scenario, key figures as tables, then every figure (title, inline SVG)."""
    predictor_table = "".join(
        f"<tr><td>{_fmt(r['device'])}</td><td>{_fmt(r['kind'])}</td><td>{_fmt(r['pi_gflops'])}</td>"
        f"<td>{_fmt(r['r2'])}</td><td>{_fmt(r['protocol'])}</td><td>{_fmt(r['mape'])}</td>"
        f"<td>{_fmt(r['within_10'])}</td><td>{_fmt(r['spearman'])}</td></tr>"
        for r in predictors
    )
    job_rows = []
    for job in jobs:
        result = job.result
        if result is None:
            job_rows.append(f"<tr><td>{_fmt(job.method)}</td><td colspan=9>{_fmt(job.status)}: {_fmt(job.error)}"
                            "</td></tr>")
            continue
        latency = result.latency
        # a chain or mesh has no single head, link and tail: its devices are in the job's summary
        head_ms, comm_ms, tail_ms = (
            (result.latency.head_ms, result.latency.comm_ms, result.latency.tail_ms)
            if isinstance(result, SplitResult) else (None, None, None)
        )
        job_rows.append(
            f"<tr><td>{_fmt(job.method)}</td><td><code>{_fmt(result.architecture)}</code></td>"
            f"<td>{_fmt(','.join(map(str, result.splits)))}</td><td>{_fmt(latency.total_ms)}</td>"
            f"<td>{_fmt(head_ms)}</td><td>{_fmt(comm_ms)}</td>"
            f"<td>{_fmt(tail_ms)}</td><td>{_fmt(result.payload_bytes)}</td>"
            f"<td>{_fmt(job.config.t_th)}</td><td>{_fmt(result.accuracy_at_loss)}</td></tr>"
        )
    images = "".join(
        f"<figure>{svg}<figcaption>{html.escape(title)}</figcaption></figure>" for title, svg in figures
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>splitnas report</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; max-width: 1200px; }}
table {{ border-collapse: collapse; margin-bottom: 2em; }} td, th {{ border: 1px solid #ccc; padding: 4px 8px; }}
th {{ background: #f0f0f0; }} code {{ font-size: 0.8em; word-break: break-all; }}
figure {{ display: inline-block; margin: 1em; vertical-align: top; }}
</style></head><body>
<h1>splitnas: {html.escape(space)} on {html.escape(device)}</h1>
<p>Scenario: {html.escape(scenario or "no search")}</p>
<h2>Predictors</h2>
<table><tr><th>device</th><th>kind</th><th>Pi (GFLOPS)</th><th>R&sup2;</th><th>held-out protocol</th>
<th>MAPE</th><th>within &plusmn;10 %</th><th>Spearman</th></tr>{predictor_table}</table>
<h2>Searched architectures</h2>
<table><tr><th>method</th><th>architecture</th><th>split</th><th>total ms</th><th>head ms</th><th>link ms</th>
<th>tail ms</th><th>payload bytes</th><th>T_th ms</th><th>accuracy at loss</th></tr>{''.join(job_rows)}</table>
<h2>Figures</h2>{images}
</body></html>
"""
