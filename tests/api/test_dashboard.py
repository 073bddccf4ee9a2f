"""The dashboard at /ui and the offline /docs, in headless Chromium against a real uvicorn server.

The server holds two synthetic devices measured and fitted (tests.utils.api_data), an agent's run with
thermal, noisy and busy-machine records, and finished search jobs (tests.utils.dashboard_data). Every
view's numbers are compared with the JSON API's; screenshots of every view go to reports/screenshots/.
Chromium is Debian's (/usr/bin/chromium, driven by Playwright): absent, the browser tests skip, except
under CI=true, where scripts/test.sh installs it and its absence is a failure.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest

from db import queries
from db.engine import session_scope
from pipeline.service import Service
from tests.api.conftest import make_client
from tests.utils.api_data import SPACE, UNMEASURED, copy_sqlite, create_token, device_records, measurement_batch
from tests.utils.dashboard_data import AGENT, add_jobs, add_models, agent_batch

CHROMIUM = os.environ.get("SPLITNAS_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "reports" / "screenshots"
# as root on a closed network: no sandbox, and none of Chromium's own connections to the outside
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _playwright():
    reason = None
    if not Path(CHROMIUM).exists():
        reason = f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        reason = "playwright is not installed (the dev extra)"
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}: scripts/test.sh installs it under CI")
        pytest.skip(reason)
    return sync_playwright


@pytest.fixture(scope="module")
def dashboard_server(template_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    directory = tmp_path_factory.mktemp("dashboard")
    db_url = copy_sqlite(template_db, directory / "service.db")
    with session_scope(db_url) as session:
        queries.ingest_batch(session, batch=agent_batch())
    add_models(db_url)
    add_jobs(db_url)
    server = Service(db_url, log=directory / "server.log", env={"SPLITNAS_API_CACHE_TTL_S": "0.5"})
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    sync_playwright = _playwright()
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser, dashboard_server: Service):
    """A page that may reach the test server only: any other request fails the test."""
    context = browser.new_context(viewport={"width": 1500, "height": 1000})
    outside: list[str] = []

    def only_local(route) -> None:
        if urlparse(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    context.route("**/*", only_local)
    page = context.new_page()
    yield page
    context.close()
    assert outside == [], f"the page asked for outside resources: {outside}"


# labels as the browser lays them out: outside their figure, or outside the cell (heat map, quality) they belong to
SPILLED_LABELS = """(root) => {
  const inside = (r, box) => r.left >= box.left - 0.5 && r.right <= box.right + 0.5
    && r.top >= box.top - 0.5 && r.bottom <= box.bottom + 0.5;
  const out = [];
  for (const svg of document.querySelectorAll(root + " svg")) {
    const box = svg.getBoundingClientRect();
    for (const t of svg.querySelectorAll("text")) {
      if (!inside(t.getBoundingClientRect(), box)) out.push(t.textContent);
    }
    for (const g of svg.querySelectorAll("g.cell, g.quality")) {
      const cell = g.querySelector("rect").getBoundingClientRect();
      for (const t of g.querySelectorAll("text")) {
        if (!inside(t.getBoundingClientRect(), cell)) out.push(t.textContent);
      }
    }
  }
  return out;
}"""


def assert_labels_inside(page, root: str) -> None:
    assert page.evaluate(SPILLED_LABELS, root) == []


def shoot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def open_view(page, server: Service, view: str) -> None:
    page.goto(f"{server.url}/ui?refresh=1#{view}")


def test_devices_view_shows_runtime_coverage_last_run_and_flags(page, dashboard_server: Service) -> None:
    open_view(page, dashboard_server, "devices")
    page.wait_for_selector(f'#devices-table tr[data-device="{AGENT}"]')
    devices = {d["name"]: d for d in httpx.get(f"{dashboard_server.url}/devices").json()}
    for name, device in devices.items():
        row = page.locator(f'#devices-table tr[data-device="{name}"]')
        coverage = row.locator(f'.coverage[data-space="{SPACE}"]')
        shown = int(coverage.get_attribute("data-measured")) + int(coverage.get_attribute("data-models"))
        assert shown == device["measurements"][SPACE]  # distinct keys: entries and architectures
    agent = page.locator(f'#devices-table tr[data-device="{AGENT}"]').inner_text()
    assert "torch 2.14.1 (cpu)" in agent
    assert "max 73.5 °C" in agent and "throttled" in agent and "1 noisy" in agent
    assert "busy_load_1m: 1.75" in agent
    assert "60/202 entries" in agent
    shoot(page, "devices")


def test_heatmap_cells_are_the_service_latencies(page, dashboard_server: Service) -> None:
    open_view(page, dashboard_server, "lut/edgegpu")
    page.wait_for_selector("#lut-figure g.cell")
    cells = page.locator("#lut-figure g.cell")
    table = httpx.get(f"{dashboard_server.url}/lut", params={"device": "edgegpu"}).json()
    assert cells.count() == sum(v is not None for row in table["table"] for v in row)
    checked = [(layer, block) for _device, layer, block in UNMEASURED] + [(0, "k3_e1"), (7, "k5_e6"), (21, "skip")]
    for layer, block in checked:
        cell = page.locator(f'#lut-figure g.cell[data-layer="{layer}"][data-block="{block}"]')
        answer = httpx.get(f"{dashboard_server.url}/latency",
                           params={"device": "edgegpu", "layer": layer, "block": block}).json()
        assert float(cell.get_attribute("data-value")) == answer["latency_ms"]
        assert cell.get_attribute("data-measured") == str(answer["measured"]).lower()
        shown = cell.locator("text").text_content()
        assert shown == f"{answer['latency_ms']:.3g}" + ("" if answer["measured"] else "*")
    measured = sum(m for row in table["measured"] for m in row)
    assert page.locator("#lut-info").inner_text().startswith(f"{measured} of {cells.count()} entries measured")
    assert_labels_inside(page, "#lut-figure")
    shoot(page, "latency_table")


def test_quality_view_shows_the_stored_metrics(page, dashboard_server: Service) -> None:
    open_view(page, dashboard_server, "quality/raspi4")
    page.wait_for_selector("#quality-figure g.quality")
    stored = httpx.get(f"{dashboard_server.url}/predictors", params={"device": "raspi4", "space": SPACE}).json()
    expected = {(p["kind"], protocol): scores["mape"] for p in stored
                for protocol, scores in p["metrics"]["protocols"].items() if scores and scores.get("n")}
    shown = {(c.get_attribute("data-kind"), c.get_attribute("data-protocol")): float(c.get_attribute("data-mape"))
             for c in page.locator("#quality-figure g.quality").all()}
    assert shown == expected
    rows = page.locator("#quality-table tr[data-kind]")
    assert rows.count() == len(expected)
    for row in rows.all():
        scores = next(p for p in stored if p["kind"] == row.get_attribute("data-kind"))["metrics"]["protocols"][
            row.get_attribute("data-protocol")]
        cells = row.locator("td").all_inner_texts()  # kind, version, protocol, n, MAPE, within 10 %, RMSE, ...
        assert float(cells[4]) == pytest.approx(scores["mape"], rel=5e-3)
        assert float(cells[5]) == pytest.approx(scores["within_10"], rel=5e-3)
    models = httpx.get(f"{dashboard_server.url}/measurements",
                       params={"device": "raspi4", "target": "model", "limit": 1000}).json()
    measured = sorted(m["latency_ms"] for m in models)
    for kind in {p["kind"] for p in stored}:
        points = page.locator(f'#quality-figure circle.point[data-kind="{kind}"]').all()
        assert sorted(float(p.get_attribute("data-measured")) for p in points) == measured
        assert all(float(p.get_attribute("data-predicted")) > 0 for p in points)
    assert_labels_inside(page, "#quality-figure")
    shoot(page, "predictor_quality")


def test_jobs_view_shows_convergence_accuracy_and_the_answer_per_layer(page, dashboard_server: Service) -> None:
    jobs = json.loads(httpx.get(f"{dashboard_server.url}/ui/data/jobs").text)["jobs"]
    done = [j for j in jobs if j["status"] == "completed"]
    open_view(page, dashboard_server, f"jobs/{done[0]['uid']}")
    page.wait_for_selector("#job-detail rect.bar")
    points = {c.get_attribute("data-uid"): float(c.get_attribute("data-latency"))
              for c in page.locator("#jobs-figure circle.job").all()}
    assert points == {j["uid"]: j["total_ms"] for j in done}
    assert page.locator("#jobs-figure").inner_text().count("T_th") >= 1
    assert page.locator("#jobs-table tr[data-uid]").count() == len(jobs)
    detail = page.locator("#job-detail")
    assert "head raspi4 → tail edgegpu" in detail.inner_text() and "loss 0.2" in detail.inner_text()
    assert detail.locator("circle.epoch").count() == 6
    bars = detail.locator("rect.bar[data-latency-ms]")
    assert bars.count() == 22
    with session_scope(dashboard_server.db_url) as session:
        job = queries.get_job(session, uid=done[0]["uid"])
        result = dict(job.result)
    sent = detail.locator(f'rect.bar[data-layer="{result["split"] - 1}"][data-payload-bytes]')
    assert float(sent.get_attribute("data-payload-bytes")) == result["payload_bytes"]
    assert_labels_inside(page, "#view-jobs")
    shoot(page, "search_jobs")


def test_a_new_upload_appears_without_a_reload(page, dashboard_server: Service) -> None:
    open_view(page, dashboard_server, "devices")
    page.wait_for_selector(f'#devices-table tr[data-device="{AGENT}"]')
    page.evaluate("window.notReloaded = true")
    device = f"dev-{uuid.uuid4().hex[:8]}"
    token = create_token(dashboard_server.db_url, f"test-{uuid.uuid4().hex[:8]}")
    records = device_records(device, gflops=3.0)[:25]
    response = httpx.post(f"{dashboard_server.url}/measurements", json=measurement_batch(device, records),
                          headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 201
    row = page.wait_for_selector(f'#devices-table tr[data-device="{device}"]', timeout=20_000)
    assert "25/202 entries" in row.inner_text()
    assert page.evaluate("window.notReloaded") is True


def test_docs_render_offline(page, dashboard_server: Service) -> None:
    page.goto(f"{dashboard_server.url}/docs")
    title = page.wait_for_selector(".swagger-ui .info .title", timeout=30_000)
    assert "splitnas latency service" in title.inner_text()
    page.wait_for_selector(".opblock-summary-path >> text=/latency")
    shoot(page, "docs")


def test_with_read_auth_the_page_asks_for_a_token(browser, template_db: str, tmp_path: Path) -> None:
    db_url = copy_sqlite(template_db, tmp_path / "service.db")
    server = Service(db_url, log=tmp_path / "server.log", env={"SPLITNAS_API_READ_AUTH": "true"})
    try:
        page = browser.new_page()
        page.goto(f"{server.url}/ui?refresh=1#devices")
        page.wait_for_selector("#login:not([hidden])")
        assert page.locator("#devices-table").count() == 0
        page.fill("#token", create_token(db_url, "dashboard-reader"))
        page.click("#login button")
        page.wait_for_selector('#devices-table tr[data-device="raspi4"]')
        assert page.locator("#login").is_hidden()
        page.close()
    finally:
        server.stop()


def test_read_auth_covers_the_dashboard_data_but_not_the_page(service_db: str) -> None:
    with make_client(service_db, api_read_auth=True) as client:
        assert client.get("/ui").status_code == 200
        assert client.get("/ui/assets/dashboard.js").status_code == 200
        assert client.get("/docs").status_code == 200
        assert client.get("/ui/data/overview").status_code == 401
        token = create_token(service_db, "reader")
        answer = client.get("/ui/data/overview", headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 200 and {d["name"] for d in answer.json()["devices"]} == {"raspi4", "edgegpu"}
        assert client.get("/ui/assets/..%2Fmain.py").status_code == 404

