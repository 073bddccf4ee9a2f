"""``/ui``: the dashboard (a static page polling the JSON under ``/ui/data``); ``/docs`` and ``/redoc`` offline.

The page and its assets hold no data and are open; the data routes take the same read auth as every
other read route (the page asks for a token when they answer 401). Figures are drawn by
``predictor.figures``, the code the main job's static report uses, from the tables held by the
service's cache: a heat-map cell is the number ``GET /latency`` answers for that entry.
"""

from __future__ import annotations

import math
from importlib import resources
from typing import Annotated, Any

import numpy as np
from anyio import to_thread
from fastapi import APIRouter, Query, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import FileResponse, HTMLResponse
from sqlalchemy import select

from api.deps import CacheDep, SessionDep, SettingsDep, check_device_known, lut_entry
from api.errors import invalid, not_found
from api.schemas import DEFAULT_SPACE, PredictorKind, Runtime
from api.validation import space_or_error
from db import queries
from db.engine import session_scope
from db.models import Measurement, SearchJob
from predictor import figures
from predictor.errors import PredictorError
from predictor.runtimes import resolve_runtime
from spaces import get_space, list_spaces

STATIC = resources.files("api") / "static"
SWAGGER = resources.files("fastapi_offline") / "static"
SWAGGER_ASSETS = {"swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js", "favicon.png"}
MEDIA = {".js": "text/javascript", ".css": "text/css", ".png": "image/png", ".html": "text/html"}

pages = APIRouter(include_in_schema=False)
router = APIRouter(prefix="/ui/data", tags=["dashboard"], include_in_schema=False)


def _asset(directory: Any, name: str, allowed: set[str] | None = None) -> FileResponse:
    path = directory / name
    if "/" in name or name.startswith(".") or (allowed is not None and name not in allowed) or not path.is_file():
        raise not_found(["path", "name"], f"no asset {name!r}")
    suffix = name[name.rfind("."):]
    return FileResponse(str(path), media_type=MEDIA.get(suffix), headers={"Cache-Control": "no-cache"})


@pages.get("/ui")
async def dashboard() -> FileResponse:
    return _asset(STATIC, "dashboard.html")


@pages.get("/ui/assets/{name}")
async def dashboard_asset(name: str) -> FileResponse:
    return _asset(STATIC, name)


@pages.get("/docs")
async def docs(request: Request) -> HTMLResponse:
    """Swagger UI from the service's own copy of its assets: /docs renders without internet."""
    return get_swagger_ui_html(
        openapi_url=request.app.openapi_url, title=f"{request.app.title} - Swagger UI",
        swagger_js_url="/docs/assets/swagger-ui-bundle.js", swagger_css_url="/docs/assets/swagger-ui.css",
        swagger_favicon_url="/docs/assets/favicon.png", oauth2_redirect_url="/docs/oauth2-redirect",
    )


@pages.get("/docs/oauth2-redirect")
async def docs_redirect() -> HTMLResponse:
    return get_swagger_ui_oauth2_redirect_html()


@pages.get("/redoc")
async def redoc(request: Request) -> HTMLResponse:
    return get_redoc_html(openapi_url=request.app.openapi_url, title=f"{request.app.title} - ReDoc",
                          redoc_js_url="/docs/assets/redoc.standalone.js", redoc_favicon_url="/docs/assets/favicon.png",
                          with_google_fonts=False)


@pages.get("/docs/assets/{name}")
async def docs_asset(name: str) -> FileResponse:
    return _asset(SWAGGER, name, SWAGGER_ASSETS)


# -- data -------------------------------------------------------------------------------------------


def _thermal(session: Any, run_id: int, environment: dict[str, Any]) -> dict[str, Any]:
    """Hottest temperature and throttling flags seen in a run, its noisy entries, and busy-machine records."""
    temperatures = [environment.get("thermal", {}).get("temperature_c")]
    throttled: set[str] = set()
    noisy = busy = 0
    rows = session.execute(select(Measurement.raw, Measurement.noisy).where(Measurement.run_id == run_id))
    for raw, is_noisy in rows:
        noisy += bool(is_noisy)
        raw = raw or {}
        for side in ("thermal_before", "thermal_after"):
            state = raw.get(side) or {}
            temperatures.append(state.get("temperature_c"))
            throttled |= {flag for flag, on in (state.get("throttled") or {}).items() if on is True}
        busy += any(("busy" in key or "load" in key) and bool(value) for key, value in raw.items())
    known = [t for t in temperatures if isinstance(t, int | float)]
    return {
        "max_temperature_c": max(known) if known else None, "throttled": sorted(throttled), "noisy": noisy,
        # the busy-machine fields an agent records (names containing 'busy' or 'load'), shown as they are
        "busy": {k: v for k, v in environment.items() if "busy" in k or "load" in k}, "busy_entries": busy,
    }


def _coverage(session: Any, device: str) -> list[dict[str, Any]]:
    counts = queries.coverage(session, device=device)
    rows = []
    for name in list_spaces():
        space = get_space(name)
        entries = sum(len(layer.block_names) for layer in space.layers) + len(space.fixed_layers)
        measured = counts.get((name, "block"), 0) + counts.get((name, "fixed"), 0)
        models = counts.get((name, "model"), 0)
        if measured or models:
            rows.append({"space": name, "measured": measured, "entries": entries, "models": models,
                         "share": measured / entries if entries else 0.0})
    configs = counts.get((None, "config"), 0)
    if configs:
        rows.append({"space": "(configurations)", "measured": configs, "entries": None, "models": 0, "share": None})
    return rows


def job_summary(job: SearchJob) -> dict[str, Any]:
    result = job.result or {}
    latency = result.get("latency") or {}
    return {
        "uid": job.uid, "method": job.method, "space": job.space, "status": job.status,
        "created_at": job.created_at.isoformat() if job.created_at else None,
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
        "epochs": len(job.history or []), "architecture": result.get("architecture"), "split": result.get("split"),
        "total_ms": latency.get("total_ms"), "t_th": (job.config or {}).get("t_th"),
        "accuracy_at_loss": result.get("accuracy_at_loss"), "error": result.get("error"),
    }


def job_dict(job: SearchJob) -> dict[str, Any]:
    """A stored job as the figures take it (nas.jobs.job_dict's fields; nas imports torch, the service must not)."""
    return {"uid": job.uid, "method": job.method, "space": job.space, "status": job.status,
            "config": job.config or {}, "history": job.history or [], "result": job.result or {}}


def device_runtimes(session: Any) -> dict[str, str]:
    """Each device's runtime(s), from its runs, comma separated."""
    found: dict[str, set[str]] = {}
    for run in queries.list_runs(session):
        found.setdefault(run.device.name, set()).add(figures.runtime(run.runtime, run.environment or {}, run.status))
    return {device: ", ".join(sorted(names)) for device, names in found.items()}


@router.get("/overview")
def overview(session: SessionDep) -> dict[str, Any]:
    """Devices (runtimes, coverage, last run, thermal and busy flags, predictors) and search jobs."""
    runs: dict[str, list[Any]] = {}
    for run in queries.list_runs(session):
        runs.setdefault(run.device.name, []).append(run)
    counts = queries.run_measurement_counts(session)
    devices = []
    for device in queries.list_devices(session):
        mine = runs.get(device.name, [])
        last = mine[-1] if mine else None
        devices.append({
            "name": device.name, "kind": device.kind, "description": device.description, "facts": device.facts,
            "runtimes": sorted({figures.runtime(r.runtime, r.environment or {}, r.status) for r in mine}),
            "coverage": _coverage(session, device.name),
            "runs": len(mine),
            "last_run": None if last is None else {
                "uid": last.uid, "status": last.status, "host": last.host, "measurements": counts.get(last.uid, 0),
                "started_at": last.started_at.isoformat() if last.started_at else None,
                "finished_at": last.finished_at.isoformat() if last.finished_at else None,
                **_thermal(session, last.id, last.environment or {}),
            },
            "predictors": sorted(f"{p.space}/{p.kind}" for p in queries.latest_predictors(session, device=device.name)),
        })
    jobs = [job_summary(job) for job in queries.list_jobs(session)]
    return {"devices": devices, "spaces": list_spaces(), "jobs": jobs}


def _runtime_of(database_url: str, device: str) -> str | None:
    with session_scope(database_url) as session:
        return device_runtimes(session).get(device)


@router.get("/lut")
async def lut_figure(
    cache: CacheDep, settings: SettingsDep, device: Annotated[str, Query()],
    space: Annotated[str, Query()] = DEFAULT_SPACE,
    # a Literal of the registered kinds, built at import time: FastAPI validates it, mypy cannot read it
    predictor: Annotated[PredictorKind, Query()] = "auto",  # type: ignore[valid-type]
    runtime: Annotated[Runtime, Query()] = None,
) -> dict[str, Any]:
    """The heat map of the table ``GET /lut`` serves (the same cached entry), with its ETag."""
    space_or_error(space, ["query", "space"])
    entry = await lut_entry(cache, (device, runtime, space, predictor), device_loc=["query", "device"],
                            kind_loc=["query", "predictor"])
    lut = entry.lut
    runtime_name = await to_thread.run_sync(_runtime_of, settings.resolved_database_url(), device)
    return {"device": device, "runtime": lut.runtime, "space": space, "predictor": lut.predictor, "etag": entry.etag,
            "measured": int(lut.measured.sum()), "entries": int((~np.isnan(lut.table)).sum()),
            "svg": figures.heatmap_svg(lut, scenario={"runtime": runtime_name})}


def _quality_data(
    database_url: str, device: str, space: str, runtime: str | None
) -> tuple[str, list[dict[str, Any]], list[tuple[str, float]]]:
    """The runtime, the device's newest predictors under it (as ``GET /predictors`` lists them) and its measured
    architectures."""
    with session_scope(database_url) as session:
        check_device_known(session, device, ["query", "device"])
        try:
            runtime = resolve_runtime(session, device=device, runtime=runtime)
        except PredictorError as exc:
            raise invalid(["query", "runtime"], str(exc)) from None
        stored = sorted(queries.latest_predictors(session, device=device, runtime=runtime, space=space),
                        key=lambda r: r.kind)
        rows = [{"kind": r.kind, "version": r.version, "metrics": r.metrics} for r in stored]
        models = queries.latest_measurements(session, device=device, runtime=runtime, space=space, target="model")
        return runtime, rows, [(row.key.split("/", 1)[1], row.latency_ms) for row in models.values()]


@router.get("/quality")
async def quality(cache: CacheDep, settings: SettingsDep, device: Annotated[str, Query()],
                  space: Annotated[str, Query()] = DEFAULT_SPACE,
                  runtime: Annotated[Runtime, Query()] = None) -> dict[str, Any]:
    """Held-out quality of the device's predictors (their stored metrics) and their predictions of measured models."""
    space_or_error(space, ["query", "space"])
    runtime, rows, models = await to_thread.run_sync(
        _quality_data, settings.resolved_database_url(), device, space, runtime
    )
    luts = {}
    for row in rows if models else ():
        try:
            luts[row["kind"]] = (await cache.get((device, runtime, space, row["kind"]))).lut
        except (PredictorError, LookupError):
            continue  # a kind that cannot build a table (a lookup table with gaps) predicts nothing here
    points = figures.model_predictions(models, luts, space) if luts else None
    return {"device": device, "runtime": runtime, "space": space, "predictors": rows,
            "svg": figures.quality_svg(rows, device=device, space=space) if rows else "",
            "models_svg": figures.predicted_measured_svg(points, title=f"{device} on {space}: predicted against "
                                                          "measured") if points else "",
            "models": points}


@router.get("/jobs")
def jobs(session: SessionDep) -> dict[str, Any]:
    """Every job's summary and the accuracy-against-latency figure of the finished ones."""
    stored = queries.list_jobs(session)
    return {"jobs": [job_summary(j) for j in stored],
            "svg": figures.accuracy_latency_svg([job_dict(j) for j in stored])}


@router.get("/jobs/{uid}")
async def job_detail(uid: str, session: SessionDep, cache: CacheDep) -> dict[str, Any]:
    """One job: its scenario, convergence and (when finished) the answer's per-layer latency and payload."""
    row = queries.get_job(session, uid=uid)
    if row is None:
        raise not_found(["path", "uid"], f"no search job {uid!r}")
    job = job_dict(row)
    scenario = figures.job_scenario(job, device_runtimes(session))
    detail: dict[str, Any] = {"summary": job_summary(row), "scenario": scenario,
                              "scenario_line": figures.scenario_line(scenario), "config": job["config"],
                              "convergence_svg": figures.convergence_svg(job, scenario=scenario), "layers": None,
                              "layers_svg": "", "layers_error": None}
    result, config = job["result"], job["config"]
    if row.status == "completed" and result.get("architecture") and "head_ms" in (result.get("latency") or {}):
        try:
            runtime, kind = config.get("runtime"), config.get("predictor", "auto")
            head = await cache.get((config["head_device"], runtime, job["space"], kind))
            tail = await cache.get((config["tail_device"], runtime, job["space"], kind))
            layers = figures.answer_layers(job, head.lut, tail.lut)
        except (PredictorError, LookupError, ValueError) as exc:
            detail["layers_error"] = f"the answer's per-layer latency needs both devices' tables: {exc}"
        else:
            detail["layers"] = [r | {"latency_ms": r["latency_ms"] if math.isfinite(r["latency_ms"]) else None}
                                for r in layers]
            detail["layers_svg"] = figures.layers_svg(job, layers, scenario=scenario)
    return detail
