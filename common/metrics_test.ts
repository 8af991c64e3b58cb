import assert from "node:assert/strict";
import {
  Counter,
  escapeLabelValue,
  Histogram,
  OVERFLOW_LABEL_VALUE,
  parsePrometheusText,
  Registry,
} from "./metrics.ts";

Deno.test("render() produces HELP, TYPE and samples that parse back", () => {
  const reg = new Registry();
  const c = reg.counter({ name: "t_requests_total", help: "Requests.", labelNames: ["code"] });
  const g = reg.gauge({ name: "t_active", help: "Active." });
  c.labels("200").inc();
  c.labels("200").inc(2);
  c.labels("503").inc();
  g.set(7);
  g.dec(2);
  const text = reg.render();
  const fams = parsePrometheusText(text);
  assert.deepEqual([...fams.keys()], ["t_requests_total", "t_active"]);
  const req = fams.get("t_requests_total")!;
  assert.equal(req.type, "counter");
  assert.equal(req.help, "Requests.");
  assert.deepEqual(req.samples, [
    { name: "t_requests_total", labels: { code: "200" }, value: 3 },
    { name: "t_requests_total", labels: { code: "503" }, value: 1 },
  ]);
  assert.deepEqual(fams.get("t_active")!.samples, [{ name: "t_active", labels: {}, value: 5 }]);
  assert.ok(
    text.startsWith("# HELP t_requests_total Requests.\n# TYPE t_requests_total counter\n"),
  );
});

Deno.test("labels() returns the same cached child for the same values", () => {
  const c = new Counter({ name: "x_total", help: "x", labelNames: ["a", "b"] });
  const child = c.labels("1", "2");
  assert.equal(c.labels("1", "2"), child);
  assert.notEqual(c.labels("12", ""), child, "values are not confused by concatenation");
  assert.throws(() => c.labels("1"), /expected 2 label values \(a, b\), got 1/);
});

Deno.test("label values and HELP are escaped and round-trip", () => {
  const reg = new Registry();
  const c = reg.counter({
    name: "esc_total",
    help: 'Help with \\ backslash\nand newline and "quotes".',
    labelNames: ["v"],
  });
  const nasty = 'a\\b"c\nd}e,f=g';
  c.labels(nasty).inc();
  const text = reg.render();
  assert.ok(text.includes('esc_total{v="a\\\\b\\"c\\nd}e,f=g"} 1'), text);
  assert.equal(text.split("\n").length, 4, "no raw newline leaks into the output");
  const fam = parsePrometheusText(text).get("esc_total")!;
  assert.equal(fam.samples[0]!.labels.v, nasty);
  assert.equal(fam.help, 'Help with \\ backslash\nand newline and "quotes".');
  assert.equal(escapeLabelValue('\\"\n'), '\\\\\\"\\n');
});

Deno.test("histograms render cumulative buckets, +Inf, _sum and _count", () => {
  const reg = new Registry();
  const h = reg.histogram({
    name: "lat_seconds",
    help: "Latency.",
    labelNames: ["route"],
    buckets: [0.1, 0.5, 1],
  });
  const child = h.labels("/a");
  for (const v of [0.05, 0.1, 0.3, 0.7, 2, 3]) child.observe(v);
  const fam = parsePrometheusText(reg.render()).get("lat_seconds")!;
  assert.equal(fam.type, "histogram");
  const buckets = fam.samples.filter((s) => s.name === "lat_seconds_bucket");
  assert.deepEqual(buckets.map((s) => [s.labels.le, s.value]), [
    ["0.1", 2], // le is inclusive
    ["0.5", 3],
    ["1", 4],
    ["+Inf", 6],
  ]);
  assert.ok(buckets.every((s) => s.labels.route === "/a"));
  const sum = fam.samples.find((s) => s.name === "lat_seconds_sum")!;
  const count = fam.samples.find((s) => s.name === "lat_seconds_count")!;
  assert.ok(Math.abs(sum.value - 6.15) < 1e-9);
  assert.equal(count.value, 6);
});

Deno.test("invalid names, labels and buckets are refused", () => {
  assert.throws(() => new Counter({ name: "1bad", help: "" }), /invalid metric name/);
  assert.throws(() => new Counter({ name: "ok", help: "", labelNames: ["__x"] }), /label name/);
  assert.throws(() => new Counter({ name: "ok", help: "", labelNames: ["a", "a"] }), /duplicate/);
  assert.throws(() => new Histogram({ name: "h", help: "", labelNames: ["le"] }), /label name/);
  assert.throws(() => new Histogram({ name: "h", help: "", buckets: [1, 1] }), /ascending/);
  assert.throws(() => new Counter({ name: "c", help: "" }).inc(-1), />= 0/);
  const reg = new Registry();
  reg.counter({ name: "dup", help: "" });
  assert.throws(() => reg.counter({ name: "dup", help: "" }), /registered twice/);
});

Deno.test("series beyond maxSeries share one overflow child", () => {
  const c = new Counter({ name: "many_total", help: "", labelNames: ["id"], maxSeries: 3 });
  for (let i = 0; i < 10; i++) c.labels(`id-${i}`).inc();
  assert.equal(c.seriesCount(), 4);
  const reg = new Registry();
  reg.register(c);
  const fam = parsePrometheusText(reg.render()).get("many_total")!;
  const overflow = fam.samples.find((s) => s.labels.id === OVERFLOW_LABEL_VALUE)!;
  assert.equal(overflow.value, 7);
});

Deno.test("onCollect hooks refresh values before rendering; special values render", () => {
  const reg = new Registry();
  const g = reg.gauge({ name: "expiry_seconds", help: "", labelNames: ["k"] });
  let t = 100;
  reg.onCollect(() => g.labels("cert").set(t));
  g.labels("inf").set(Infinity);
  g.labels("nan").set(NaN);
  t = 42;
  const fam = parsePrometheusText(reg.render()).get("expiry_seconds")!;
  const byK = new Map(fam.samples.map((s) => [s.labels.k, s.value]));
  assert.equal(byK.get("cert"), 42);
  assert.equal(byK.get("inf"), Infinity);
  assert.ok(Number.isNaN(byK.get("nan")));
  assert.equal(new Registry().render(), "");
});

Deno.test("parsePrometheusText rejects malformed exposition", () => {
  const bad = [
    "x 1\n", // sample without TYPE
    '# TYPE x counter\nx{a="1} 1\n', // unterminated value
    '# TYPE x counter\nx{a="1"} one\n', // bad value
    "# TYPE x counter\nx 1", // no trailing newline
    "# TYPE x counter\ny 1\n", // wrong family
    '# TYPE x counter\nx{a="\\q"} 1\n', // bad escape
    "# TYPE x counter\n# TYPE x counter\n", // declared twice
  ];
  for (const text of bad) assert.throws(() => parsePrometheusText(text), Error, text);
});
