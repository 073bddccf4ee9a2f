"""The pipeline's HTML report: key figures as tables and the dashboard's figures, inline."""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from db import queries, session_scope
from db.records import E2ERecord
from nas.results import Job, SplitResult
from predictor import figures as shared  # the dashboard's figures (/ui): the report shows the same
from predictor import load_lut, load_training_data
from predictor.errors import PredictorError
from predictor.evaluate import score
from predictor.latency import DeviceLUT
from predictor.runtime_comparison import RuntimeComparison, compare_runtimes
from predictor.runtimes import resolve_runtime


def write_report(out: Path, db: str, devices: Sequence[str], device: str, space: str, jobs: Sequence[Job]) -> Path:
    """``out/index.html`` with the tables' heat maps, predictor quality and the searches; returns its path.

    The figures are the dashboard's (``predictor.figures``, served at ``/ui``), inline.
    """
    stored_jobs = [job.model_dump(mode="json", by_alias=True) for job in jobs]
    shown: list[tuple[str, str]] = []
    predictor_rows: list[dict[str, Any]] = []
    comparisons: list[RuntimeComparison] = []
    with session_scope(db) as session:
        labels: dict[str, set[str]] = {}
        for run in queries.list_runs(session):
            labels.setdefault(run.device.name, set()).add(shared.runtime(run.runtime, run.environment or {},
                                                                        run.status))
        runtime = {name: ", ".join(sorted(kinds)) for name, kinds in labels.items()}
        device_runtimes = queries.device_runtimes(session)
        for name in devices:
            mine = device_runtimes.get(name) or [resolve_runtime(session, device=name)]
            for chosen in mine:
                under = f" under {chosen}" if len(mine) > 1 else ""
                lut = measured_lut(session, name, space, chosen)
                shown.append((f"Latency table of {name}{under} ({lut.predictor})",
                              shared.heatmap_svg(lut, scenario={"runtime": chosen if under else runtime.get(name)})))
                stored = [{"kind": r.kind, "version": r.version, "metrics": r.metrics} for r in sorted(
                    queries.latest_predictors(session, device=name, space=space, runtime=chosen), key=lambda r: r.kind)]
                if stored:
                    shown.append((f"Held-out quality of the predictors of {name}{under}",
                                  shared.quality_svg(stored, device=name, space=space)))
                predictor_rows += predictor_table_rows(session, name, space, chosen)
            if len(mine) > 1:
                comparisons.append(runtime_comparison(session, name, space, mine))
                shown.append((f"The runtimes of {name} compared", shared.runtimes_svg(comparisons[-1].to_dict())))
        scatters = {chosen: model_predictions(session, device, space, chosen)
                    for chosen in device_runtimes.get(device) or [resolve_runtime(session, device=device)]}
        tables = {(d, j.config.runtime) for j in jobs if isinstance(j.result, SplitResult)
                  for d in (j.config.head_device, j.config.tail_device)}
        luts = {(d, r): load_lut(session, device=d, space=space, runtime=r) for d, r in tables}
        e2e_runs = queries.e2e_records(session)
    for chosen, scatter in scatters.items():
        if scatter["measured"]:
            under = f" ({chosen})" if len(scatters) > 1 else ""
            shown.append((f"Predicted vs measured latency of whole architectures and heads{under}",
                          shared.predicted_measured_svg(scatter, title=f"{device}{under}: measured models and heads")))
    for job, stored_job in zip(jobs, stored_jobs, strict=True):
        if job.result is None:
            continue
        scenario = shared.job_scenario(stored_job, runtime)
        shown.append((f"Convergence of the {job.method} search", shared.convergence_svg(stored_job, scenario=scenario)))
        if isinstance(job.result, SplitResult):  # one split point (not a topology's chain or mesh)
            head, tail = (luts[d, job.config.runtime] for d in (job.config.head_device, job.config.tail_device))
            layers = shared.answer_layers(stored_job, head, tail)
            shown.append((f"The {job.method} answer per layer",
                          shared.layers_svg(stored_job, layers, scenario=scenario)))
    finished = [j for j in stored_jobs if j.get("result")]
    if finished:
        shown.append(("Accuracy vs latency of the searched architectures", shared.accuracy_latency_svg(finished)))
    scenario_text = shared.scenario_line(shared.job_scenario(finished[0], runtime)) if finished else ""
    index = out / "index.html"
    index.write_text(render_index(space, device, predictor_rows, jobs, shown, scenario=scenario_text,
                                  comparisons=comparisons, e2e_runs=e2e_runs))
    summary = {"predictors": predictor_rows, "jobs": stored_jobs,
               "runtimes": {c.device: c.to_dict() for c in comparisons},
               "e2e": [r.model_dump(mode="json") | {"id": i, "error_pct": r.error_pct} for i, r in e2e_runs]}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return index


def measured_lut(session: Any, device: str, space: str, runtime: str) -> DeviceLUT:
    """The device's table as measured (lookup, gaps filled by the best other kind) for the heat map."""
    try:
        return load_lut(session, device=device, space=space, kind="lookup", runtime=runtime)
    except PredictorError:
        return load_lut(session, device=device, space=space, runtime=runtime)


def runtime_comparison(session: Any, device: str, space: str, runtimes: Sequence[str]) -> RuntimeComparison:
    """The device's runtimes compared on its measurements, with the stored predictors' held-out model scores."""
    data = {r: load_training_data(session, device=device, space=space, runtime=r) for r in runtimes}
    scores = {r: {p.kind: p.metrics.get("protocols", {})
                  for p in queries.latest_predictors(session, device=device, space=space, runtime=r)}
              for r in runtimes}
    return compare_runtimes(data, scores=scores)


def predictor_table_rows(session: Any, device: str, space: str, runtime: str) -> list[dict[str, Any]]:
    rows = []
    for row in sorted(queries.latest_predictors(session, device=device, space=space, runtime=runtime),
                      key=lambda r: r.kind):
        fit = row.metrics.get("fit", {})
        protocols = row.metrics.get("protocols", {})
        # the most telling held-out protocol that has data: whole models, else summed tables, else entries
        protocol = next((p for p in ("model", "arch-sum", "entry") if (protocols.get(p) or {}).get("n")), None)
        best = protocols.get(protocol, {}) if protocol else {}
        rows.append({
            "device": device, "runtime": runtime, "kind": row.kind, "version": row.version,
            "pi_gflops": fit.get("pi_gflops"), "r2": fit.get("r2"),
            "protocol": protocol,
            "mape": best.get("mape"), "within_10": best.get("within_10"), "spearman": best.get("spearman"),
        })
    return rows


def model_predictions(session: Any, device: str, space_name: str, runtime: str) -> dict[str, Any]:
    """Measured whole-model and head latencies under ``runtime`` with each fitted kind's prediction of them."""
    rows = queries.latest_measurements(session, device=device, runtime=runtime, space=space_name, target="model")
    luts = {}
    for fitted in queries.latest_predictors(session, device=device, space=space_name, runtime=runtime):
        try:
            luts[fitted.kind] = load_lut(session, device=device, space=space_name, kind=fitted.kind, runtime=runtime)
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


def runtimes_section(comparisons: Sequence[RuntimeComparison]) -> str:
    """A table per device measured under several runtimes: op ratio, sum-of-blocks bias, model-level accuracy."""
    if not comparisons:
        return ""
    parts = ["<h2>Runtimes compared</h2>"]
    for c in comparisons:
        rows = []
        for r in c.runtimes:
            ratio, bias = c.op_ratio[r], c.sum_bias_pct[r]
            accuracy = "; ".join(f"{html.escape(k)}: MAPE {_fmt(s.get('mape'))} %, ±10 % {_fmt(s.get('within_10'))}"
                                 for k, s in c.model_scores.get(r, {}).items() if s.get("n")) or "-"
            rows.append(f"<tr><td>{_fmt(r)}</td><td>{_fmt(ratio.median)} ({ratio.n} ops)</td>"
                        f"<td>{_fmt(bias.median)} [{_fmt(bias.q1)}, {_fmt(bias.q3)}] ({bias.n} models)</td>"
                        f"<td>{accuracy}</td></tr>")
        parts.append(f"<p>{html.escape(c.device)}: op latency ratio to {html.escape(c.reference)}; bias = summed "
                     "measured blocks against the whole model measured, in % (the fusion effect the model-level "
                     "correction learns per runtime)</p><table><tr><th>runtime</th><th>op ratio (median)</th>"
                     "<th>sum-of-blocks bias % (median [quartiles])</th><th>held-out model-level accuracy</th></tr>"
                     + "".join(rows) + "</table>")
    return "\n".join(parts)


def e2e_section(runs: Sequence[tuple[int, E2ERecord]]) -> str:
    """The stored end-to-end runs (``splitnas-edge run``): measured p50 beside the prediction, and the accuracy."""
    if not runs:
        return ""
    s = score([r.p50_ms for _, r in runs], [r.predicted_ms for _, r in runs])
    rows = "".join(
        f"<tr><td>{i}</td><td>{_fmt(r.job)}</td><td>{_fmt(' -> '.join(r.devices))}</td><td>{_fmt(r.runtime)}</td>"
        f"<td>{_fmt(','.join(map(str, r.splits)))}</td><td>{_fmt(r.codec)}</td><td>{_fmt(r.transport)}</td>"
        f"<td>{_fmt(r.loss)}</td><td>{_fmt(r.throughput_mbps)}</td><td>{_fmt(r.predicted_ms)}</td>"
        f"<td>{_fmt(r.p50_ms)}</td><td>{_fmt(r.p90_ms)}</td><td>{r.error_pct:+.1f}</td></tr>"
        for i, r in runs
    )
    return (f"<h2>End-to-end runs</h2><p>{s.n} runs: MAPE {_fmt(s.mape)} %, within &plusmn;10 % {_fmt(s.within_10)} %"
            "</p><table><tr><th>id</th><th>job</th><th>devices</th><th>runtime</th><th>splits</th><th>codec</th>"
            "<th>transport</th><th>loss</th><th>Mbit/s</th><th>predicted ms</th><th>p50 ms</th><th>p90 ms</th>"
            f"<th>error %</th></tr>{rows}</table>")


def render_index(
    space: str, device: str, predictors: list[dict[str, Any]], jobs: Sequence[Job], figures: list[tuple[str, str]],
    *, scenario: str = "", comparisons: Sequence[RuntimeComparison] = (),
    e2e_runs: Sequence[tuple[int, E2ERecord]] = (),
) -> str:
    """The report page: the scenario, key figures as tables, then every figure (title, inline SVG)."""
    predictor_table = "".join(
        f"<tr><td>{_fmt(r['device'])}</td><td>{_fmt(r['runtime'])}</td><td>{_fmt(r['kind'])}</td>"
        f"<td>{_fmt(r['pi_gflops'])}</td>"
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
<table><tr><th>device</th><th>runtime</th><th>kind</th><th>Pi (GFLOPS)</th><th>R&sup2;</th><th>held-out protocol</th>
<th>MAPE</th><th>within &plusmn;10 %</th><th>Spearman</th></tr>{predictor_table}</table>
{runtimes_section(comparisons)}
<h2>Searched architectures</h2>
<table><tr><th>method</th><th>architecture</th><th>split</th><th>total ms</th><th>head ms</th><th>link ms</th>
<th>tail ms</th><th>payload bytes</th><th>T_th ms</th><th>accuracy at loss</th></tr>{''.join(job_rows)}</table>
{e2e_section(e2e_runs)}
<h2>Figures</h2>{images}
</body></html>
"""
