// The skein dashboard: reads /v1/dashboard with a read token kept in session storage.
import { fmt, lineChart, topology } from "./charts.js";

const KEY = "skein-read-token";
const REFRESH_MS = 5000;
const $ = (id) => document.getElementById(id);

// A token in the address (#token=…, never sent to the server) is kept, then removed from view.
const m = /(?:^#|&)token=([^&]+)/.exec(location.hash);
if (m) {
  sessionStorage.setItem(KEY, decodeURIComponent(m[1]));
  history.replaceState(null, "", location.pathname + location.search);
}

function td(text, cls) {
  const c = document.createElement("td");
  c.textContent = text ?? "";
  if (cls) c.className = cls;
  return c;
}

function rows(tbody, list, cells, attr) {
  tbody.replaceChildren(...list.map((x) => {
    const tr = document.createElement("tr");
    tr.append(...cells(x));
    if (attr) { for (const [k, v] of Object.entries(attr(x))) tr.setAttribute(k, v); }
    return tr;
  }));
}

function until(ms, now) {
  const d = (ms - now) / 1000;
  if (d < 0) return "expired";
  if (d < 3600) return `${Math.round(d / 60)} min`;
  if (d < 86400 * 2) return `${Math.round(d / 3600)} h`;
  return `${Math.round(d / 86400)} days`;
}

function render(data) {
  const now = data.now;
  const services = data.services;
  const tb = $("services").tBodies[0];
  const list = services.flatMap((s) =>
    s.instances.length === 0 ? [{ s, i: null }] : s.instances.map((i) => ({ s, i }))
  );
  rows(tb, list, ({ s, i }) => [
    td(s.name),
    td(i?.id ?? "(no instances)"),
    td(i?.address),
    td(i ? [i.node, i.zone].filter(Boolean).join(" / ") : ""),
    td(i?.version),
    td(i?.capabilities.join(", ")),
    td(i?.health, i ? `health-${i.health}` : ""),
  ], ({ s }) => ({ "data-service": s.name }));

  const sig = $("signals");
  const names = Object.keys(data.signals).sort();
  sig.replaceChildren(...names.map((name) => {
    const s = data.signals[name];
    const card = document.createElement("div");
    card.className = "service-card";
    card.dataset.signals = name;
    const h = document.createElement("h3");
    const last = (arr) => [...arr].reverse().find((v) => v !== null && v !== 0) ?? null;
    h.textContent = `${name} — ${fmt(last(s.rate))} req/s, success ${
      last(s.success) === null ? "–" : (last(s.success) * 100).toFixed(1) + "%"
    }, p99 ${fmt(last(s.p99))} ms`;
    const charts = document.createElement("div");
    charts.className = "charts";
    charts.append(
      lineChart("rate", s.t, [{ name: "req/s", color: "#3a6db3", values: s.rate }], "req/s"),
      lineChart("success", s.t, [{
        name: "success",
        color: "#1b7f3b",
        values: s.success.map((v) => (v === null ? null : v * 100)),
      }], "%"),
      lineChart("latency", s.t, [
        { name: "p50", color: "#3a6db3", values: s.p50 },
        { name: "p95", color: "#a86b00", values: s.p95 },
        { name: "p99", color: "#b3261e", values: s.p99 },
      ], "ms"),
      lineChart("saturation", s.t, [
        { name: "in-flight", color: "#5b3ab3", values: s.inflight },
        { name: "cb rejects", color: "#b3261e", values: s.rejections },
      ], ""),
    );
    card.append(h, charts);
    return card;
  }));
  if (names.length === 0) sig.textContent = "No traffic reported yet.";

  $("topology").replaceChildren(topology(services.map((s) => s.name), data.edges));
  rows($("edges").tBodies[0], data.edges, (e) => [
    td(e.source),
    td(e.destination),
    td(`${fmt(e.rate)}/s`),
    td(e.success === null ? "–" : `${(e.success * 100).toFixed(2)}%`),
    td(`${fmt(e.p99)} ms`),
    td(`${e.source_identity ?? "?"} → ${e.destination_identity ?? "?"}`),
  ], (e) => ({ "data-edge": `${e.source}->${e.destination}` }));

  rows($("denials").tBodies[0], data.denials, (d) => [
    td(new Date(d.at).toLocaleTimeString()),
    td(d.node),
    td(d.caller ?? "(no identity)"),
    td(d.service),
    td(`${d.method} ${d.path}`),
    td(d.reason),
  ]);

  const certs = [
    ...data.certs.ca.map((c) => ({
      kind: c.active ? "CA root (active)" : "CA root",
      subject: `${data.trust_domain} #${c.generation}`,
      at: c.not_after,
      warnMs: 30 * 86400 * 1000,
    })),
    ...data.certs.proxies.map((c) => ({
      kind: "proxy",
      subject: `${c.service} on ${c.node}`,
      at: c.not_after,
      // Proxies renew at two thirds of their lifetime: one close to expiry missed renewals.
      warnMs: 3600 * 1000,
    })),
  ];
  rows($("certs").tBodies[0], certs, (c) => [
    td(c.kind),
    td(c.subject),
    td(new Date(c.at).toISOString()),
    td(until(c.at, now), c.at - now < c.warnMs ? "soon" : ""),
  ]);
  $("status").textContent = `updated ${new Date(now).toLocaleTimeString()}`;
}

let timer = null;

async function load() {
  const token = sessionStorage.getItem(KEY);
  if (!token) {
    $("login").hidden = false;
    $("main").hidden = true;
    $("forget").hidden = true;
    $("status").textContent = "a read token is needed";
    return;
  }
  try {
    const r = await fetch("/v1/dashboard", { headers: { authorization: `Bearer ${token}` } });
    if (r.status === 401 || r.status === 403) {
      sessionStorage.removeItem(KEY);
      $("status").textContent = `token refused (${r.status})`;
      $("login").hidden = false;
      $("main").hidden = true;
      return;
    }
    if (!r.ok) throw new Error(`HTTP ${r.status}`);
    render(await r.json());
    $("login").hidden = true;
    $("main").hidden = false;
    $("forget").hidden = false;
  } catch (e) {
    $("status").textContent = `cannot load: ${e.message}`;
  }
  clearTimeout(timer);
  timer = setTimeout(load, REFRESH_MS);
}

$("login").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const v = $("token").value.trim();
  if (v) sessionStorage.setItem(KEY, v);
  $("token").value = "";
  load();
});
$("forget").addEventListener("click", () => {
  sessionStorage.removeItem(KEY);
  load();
});
load();
