// The splitnas dashboard: polls the service's JSON under /ui/data and shows it; figures come drawn (SVG)
// by predictor.figures, the code of the main job's static report. No library, nothing loaded from outside.
"use strict";

const params = new URLSearchParams(location.search);
const REFRESH_S = Math.max(Number(params.get("refresh")) || 5, 0.5);
const VIEWS = ["devices", "lut", "quality", "jobs"];
const state = { overview: null, job: null };
const $ = (id) => document.getElementById(id);

function esc(value) {
  return String(value ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

function num(value, digits = 3) {
  if (value === null || value === undefined || Number.isNaN(value)) return "–";
  if (value === 0) return "0";
  return String(Number(Number(value).toPrecision(digits)));
}

function when(iso) {
  return iso ? new Date(iso).toISOString().replace("T", " ").slice(0, 19) + " UTC" : "–";
}

class Unauthorized extends Error {}

async function getJSON(path) {
  const token = sessionStorage.getItem("splitnas-token");
  const response = await fetch(path, { headers: token ? { Authorization: `Bearer ${token}` } : {} });
  if (response.status === 401) throw new Unauthorized("a read token is needed");
  if (!response.ok) {
    const body = await response.json().catch(() => ({}));
    const detail = (body.detail || []).map((d) => d.msg).join("; ");
    throw new Error(`${path}: ${response.status} ${detail}`);
  }
  return response.json();
}

// Replace an element's content only when it changed: polling must not flicker or lose scroll position.
function put(id, html) {
  const element = $(id);
  if (element.dataset.html !== html) {
    element.innerHTML = html;
    element.dataset.html = html;
  }
}

function fillSelect(id, values, preferred) {
  const select = $(id);
  const current = select.value || preferred;
  const options = values.map((v) => `<option${v === current ? " selected" : ""}>${esc(v)}</option>`).join("");
  if (select.dataset.options !== options) {
    select.innerHTML = options;
    select.dataset.options = options;
  }
}

function currentView() {
  const name = location.hash.slice(1).split("/")[0];
  return VIEWS.includes(name) ? name : "devices";
}

// -- devices ------------------------------------------------------------------------------------------

function coverageCell(rows) {
  return rows.map((r) => {
    const share = r.share === null ? "" : `<span class="cov-bar"><span style="width:${(100 * r.share).toFixed(1)}%"></span></span>`;
    const entries = r.entries === null ? `${r.measured} configurations` : `${r.measured}/${r.entries} entries (${(100 * r.share).toFixed(0)} %)`;
    const models = r.models ? `, ${r.models} architectures` : "";
    return `<div class="coverage" data-space="${esc(r.space)}" data-measured="${r.measured}" data-models="${r.models}">${share}<b>${esc(r.space)}</b>: ${entries}${models}</div>`;
  }).join("") || "–";
}

function flags(run) {
  if (!run) return "–";
  const out = [];
  if (run.max_temperature_c !== null) out.push(`<span class="flag ok">max ${num(run.max_temperature_c, 3)} °C</span>`);
  for (const flag of run.throttled) out.push(`<span class="flag bad">${esc(flag)}</span>`);
  if (run.noisy) out.push(`<span class="flag warn">${run.noisy} noisy</span>`);
  if (!out.length) out.push('<span class="hint">none recorded</span>');
  return out.join(" ");
}

function busyFlags(run) {
  if (!run) return "–";
  const out = Object.entries(run.busy).map(([k, v]) => `<span class="flag warn">${esc(k)}: ${esc(typeof v === "object" ? JSON.stringify(v) : v)}</span>`);
  if (run.busy_entries) out.push(`<span class="flag warn">${run.busy_entries} entries on a busy machine</span>`);
  return out.join(" ") || '<span class="hint">none recorded</span>';
}

function renderDevices(overview) {
  const rows = overview.devices.map((d) => {
    const run = d.last_run;
    const last = run ? `<code>${esc(run.uid)}</code> ${esc(run.status)}<br>${run.measurements} rows, ${when(run.finished_at || run.started_at)}${run.host ? `<br>host ${esc(run.host)}` : ""}` : "–";
    return `<tr data-device="${esc(d.name)}"><td><a class="link" href="#lut/${encodeURIComponent(d.name)}">${esc(d.name)}</a><br><span class="hint">${esc(d.kind)}</span></td>`
      + `<td>${d.runtimes.map(esc).join("<br>") || "–"}</td><td>${coverageCell(d.coverage)}</td>`
      + `<td>${last}<br><span class="hint">${d.runs} run(s)</span></td><td>${flags(run)}</td><td>${busyFlags(run)}</td>`
      + `<td>${d.predictors.map(esc).join("<br>") || "–"}</td></tr>`;
  }).join("");
  put("devices", overview.devices.length
    ? `<table id="devices-table"><tr><th>device</th><th>runtime</th><th>coverage</th><th>last run</th><th>thermal</th><th>busy machine</th><th>predictors</th></tr>${rows}</table>`
    : "<p>No device yet: run <code>profiler run --server …</code> or <code>profiler import-hwnasbench</code>.</p>");
}

// -- latency table and predictor quality ------------------------------------------------------------------

function deviceSpaces(device) {
  const found = state.overview?.devices.find((d) => d.name === device);
  const spaces = (found?.coverage || []).map((r) => r.space).filter((s) => s !== "(configurations)");
  return spaces.length ? spaces : state.overview?.spaces || [];
}

function syncSelectors(prefix) {
  const names = state.overview.devices.map((d) => d.name);
  const fromHash = decodeURIComponent(location.hash.split("/")[1] || "");
  if (fromHash && names.includes(fromHash)) $(`${prefix}-device`).value = fromHash;
  fillSelect(`${prefix}-device`, names, fromHash || names[0]);
  fillSelect(`${prefix}-space`, deviceSpaces($(`${prefix}-device`).value), "fbnet-cifar100");
}

async function renderLut() {
  syncSelectors("lut");
  const device = $("lut-device").value;
  if (!device) return put("lut-figure", "<p>No device yet.</p>");
  const query = new URLSearchParams({ device, space: $("lut-space").value, predictor: $("lut-predictor").value });
  try {
    const data = await getJSON(`/ui/data/lut?${query}`);
    put("lut-info", `${data.measured} of ${data.entries} entries measured, the rest predicted by ${esc(data.predictor)}; `
      + `the same table as <code>GET /lut</code> (ETag <code>${esc(data.etag)}</code>) and <code>GET /latency</code>.`);
    put("lut-figure", data.svg);
  } catch (error) {
    if (error instanceof Unauthorized) throw error;
    put("lut-info", "");
    put("lut-figure", `<p class="hint">${esc(error.message)}</p>`);
  }
}

async function renderQuality() {
  syncSelectors("quality");
  const device = $("quality-device").value;
  if (!device) return put("quality-figure", "<p>No device yet.</p>");
  const data = await getJSON(`/ui/data/quality?${new URLSearchParams({ device, space: $("quality-space").value })}`);
  put("quality-figure", (data.svg || "<p>No predictor fitted for this device and space: <code>predictor fit</code>.</p>")
    + (data.models_svg || ""));
  const rows = [];
  for (const p of data.predictors) {
    for (const [protocol, s] of Object.entries(p.metrics.protocols || {})) {
      if (!s || !s.n) continue;
      rows.push(`<tr data-kind="${esc(p.kind)}" data-protocol="${esc(protocol)}"><td>${esc(p.kind)}</td><td class="num">${p.version}</td><td>${esc(protocol)}</td>`
        + `<td class="num">${s.n}/${s.total}</td><td class="num">${num(s.mape)}</td><td class="num">${num(s.within_10)}</td>`
        + `<td class="num">${num(s.rmse_ms)}</td><td class="num">${num(s.spearman)}</td><td class="num">${num(s.kendall)}</td></tr>`);
    }
  }
  put("quality-table", rows.length ? `<table><tr><th>kind</th><th>version</th><th>protocol</th><th>n</th><th>MAPE %</th>`
    + `<th>within ±10 %</th><th>RMSE ms</th><th>Spearman</th><th>Kendall</th></tr>${rows.join("")}</table>` : "");
}

// -- search jobs ------------------------------------------------------------------------------------------

async function renderJobs() {
  const data = await getJSON("/ui/data/jobs");
  put("jobs-figure", data.svg);
  const selected = decodeURIComponent(location.hash.split("/")[1] || "") || data.jobs.at(-1)?.uid;
  const rows = data.jobs.map((j) => `<tr data-uid="${esc(j.uid)}"${j.uid === selected ? ' class="selected"' : ""}>`
    + `<td><a class="link" href="#jobs/${esc(j.uid)}"><code>${esc(j.uid.slice(0, 8))}</code></a></td><td>${esc(j.method)}</td>`
    + `<td>${esc(j.status)}</td><td class="num">${j.epochs}</td><td><code>${esc(j.architecture || j.error || "")}</code></td>`
    + `<td class="num">${j.split ?? "–"}</td><td class="num">${num(j.total_ms, 4)}</td><td class="num">${num(j.t_th)}</td>`
    + `<td class="num">${num(j.accuracy_at_loss, 4)}</td></tr>`).join("");
  put("jobs-table", data.jobs.length ? `<table><tr><th>uid</th><th>method</th><th>status</th><th>epochs</th><th>architecture</th>`
    + `<th>split</th><th>T ms</th><th>T_th ms</th><th>accuracy at loss</th></tr>${rows}</table>` : "<p>No search job yet: <code>nas search</code>.</p>");
  if (!selected) return put("job-detail", "");
  const job = await getJSON(`/ui/data/jobs/${encodeURIComponent(selected)}`);
  put("job-detail", `<h3>Job <code>${esc(selected)}</code> (${esc(job.summary.method)}, ${esc(job.summary.status)})</h3>`
    + `<p class="scenario">${esc(job.scenario_line)}</p><div class="figure">${job.convergence_svg}${job.layers_svg}</div>`
    + (job.layers_error ? `<p class="hint">${esc(job.layers_error)}</p>` : ""));
}

// -- loop -----------------------------------------------------------------------------------------------

const RENDER = { devices: async () => renderDevices(state.overview), lut: renderLut, quality: renderQuality, jobs: renderJobs };

async function refresh() {
  const view = currentView();
  for (const name of VIEWS) $(`view-${name}`).hidden = name !== view;
  document.querySelectorAll("nav a[data-view]").forEach((a) => a.classList.toggle("active", a.dataset.view === view));
  const status = $("status");
  try {
    state.overview = await getJSON("/ui/data/overview");
    await RENDER[view]();
    $("login").hidden = true;
    status.className = "status";
    status.textContent = `${state.overview.devices.length} devices, ${state.overview.jobs.length} jobs · updated ${new Date().toLocaleTimeString()} · every ${REFRESH_S} s`;
  } catch (error) {
    status.className = "status error";
    status.textContent = error.message;
    if (error instanceof Unauthorized) $("login").hidden = false;
  }
}

let timer = null;
function schedule() {
  clearTimeout(timer);
  refresh().finally(() => { timer = setTimeout(schedule, REFRESH_S * 1000); });
}

$("login").addEventListener("submit", (event) => {
  event.preventDefault();
  sessionStorage.setItem("splitnas-token", $("token").value.trim());
  schedule();
});
for (const id of ["lut-device", "lut-space", "lut-predictor", "quality-device", "quality-space"]) {
  $(id).addEventListener("change", () => {
    if (id.endsWith("-device")) history.replaceState(null, "", `#${currentView()}/${encodeURIComponent($(id).value)}`);
    schedule();
  });
}
window.addEventListener("hashchange", schedule);
schedule();
