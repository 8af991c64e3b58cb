// Small hand-written SVG charts: a time series panel and the topology graph. No libraries.
const NS = "http://www.w3.org/2000/svg";

/** Creates an SVG element with attributes. */
export function el(name, attrs = {}, text) {
  const e = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

/**
 * A line chart of `series` ([{ name, color, values }]) over times `t` (epoch ms); null values
 * break the line. Returns the <svg>.
 */
export function lineChart(title, t, series, unit, width = 300, height = 120) {
  const pad = { l: 40, r: 8, t: 16, b: 18 };
  const svg = el("svg", { class: "chart", width, height, "data-chart": title });
  svg.append(el("text", { x: pad.l, y: 11 }, `${title}${unit ? ` (${unit})` : ""}`));
  const all = series.flatMap((s) => s.values.filter((v) => v !== null));
  const max = Math.max(1e-9, ...all) * 1.1;
  const x0 = t[0], x1 = t[t.length - 1];
  const x = (v) => pad.l + (width - pad.l - pad.r) * ((v - x0) / Math.max(1, x1 - x0));
  const y = (v) => height - pad.b - (height - pad.t - pad.b) * (v / max);
  svg.append(
    el("line", {
      class: "axis",
      x1: pad.l,
      y1: height - pad.b,
      x2: width - pad.r,
      y2: height - pad.b,
    }),
  );
  svg.append(el("line", { class: "axis", x1: pad.l, y1: pad.t, x2: pad.l, y2: height - pad.b }));
  svg.append(el("text", { x: 2, y: pad.t + 8 }, fmt(max)));
  svg.append(el("text", { x: 2, y: height - pad.b }, "0"));
  svg.append(el("text", { x: pad.l, y: height - 4 }, "-15m"));
  svg.append(el("text", { x: width - pad.r - 22, y: height - 4 }, "now"));
  // Legends start after the title, whatever its length.
  let lx = pad.l + (title.length + (unit ? unit.length + 3 : 0) + 2) * 6;
  for (const s of series) {
    let d = "";
    let pen = false;
    s.values.forEach((v, i) => {
      if (v === null) {
        pen = false;
        return;
      }
      d += `${pen ? "L" : "M"}${x(t[i]).toFixed(1)},${y(v).toFixed(1)}`;
      pen = true;
    });
    // A single point still shows: a dot-sized segment.
    if (d !== "" && !d.includes("L")) d += `h1.5`;
    svg.append(el("path", { class: "line", d, stroke: s.color, "data-series": s.name }));
    if (series.length > 1) {
      svg.append(el("text", { x: lx, y: 11, fill: s.color }, s.name));
      lx += s.name.length * 6 + 12;
    }
  }
  return svg;
}

/** A short number. */
export function fmt(v) {
  if (v === null || v === undefined) return "–";
  if (v >= 100) return v.toFixed(0);
  if (v >= 10) return v.toFixed(1);
  return v.toFixed(2);
}

/**
 * The topology graph: services on a circle, an arrow per edge labelled with its rate,
 * success and p99. Returns the <svg>.
 */
export function topology(services, edges, width = 640, height = 360) {
  const svg = el("svg", { width, height, "data-chart": "topology" });
  const defs = el("defs");
  const marker = el("marker", {
    id: "arrow",
    viewBox: "0 0 10 10",
    refX: 10,
    refY: 5,
    markerWidth: 7,
    markerHeight: 7,
    orient: "auto",
  });
  marker.append(el("path", { d: "M0,0L10,5L0,10z", fill: "#3a6db3" }));
  defs.append(marker);
  svg.append(defs);
  const names = [...new Set([...services, ...edges.flatMap((e) => [e.source, e.destination])])]
    .sort();
  const cx = width / 2, cy = height / 2, r = Math.min(width, height) / 2 - 40;
  const pos = new Map(names.map((n, i) => {
    const a = (2 * Math.PI * i) / Math.max(1, names.length) - Math.PI / 2;
    return [n, { x: cx + r * Math.cos(a), y: cy + r * Math.sin(a) }];
  }));
  const R = 26;
  for (const e of edges) {
    const a = pos.get(e.source), b = pos.get(e.destination);
    const g = el("g", { class: "edge", "data-edge": `${e.source}->${e.destination}` });
    const dx = b.x - a.x, dy = b.y - a.y, len = Math.max(1, Math.hypot(dx, dy));
    g.append(el("line", {
      x1: a.x + (dx / len) * R,
      y1: a.y + (dy / len) * R,
      x2: b.x - (dx / len) * R,
      y2: b.y - (dy / len) * R,
      "marker-end": "url(#arrow)",
    }));
    const label = `${fmt(e.rate)}/s · ${
      e.success === null ? "–" : (e.success * 100).toFixed(1) + "%"
    } · p99 ${fmt(e.p99)}ms`;
    g.append(el("text", { x: (a.x + b.x) / 2, y: (a.y + b.y) / 2 - 4 }, label));
    const tip = el(
      "title",
      {},
      `${e.source_identity ?? e.source} → ${e.destination_identity ?? e.destination}`,
    );
    g.append(tip);
    svg.append(g);
  }
  for (const n of names) {
    const p = pos.get(n);
    const g = el("g", { class: "node", "data-node": n });
    g.append(el("circle", { cx: p.x, cy: p.y, r: R }));
    g.append(el("text", { x: p.x, y: p.y + 4 }, n));
    svg.append(g);
  }
  return svg;
}
