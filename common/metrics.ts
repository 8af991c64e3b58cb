/**
 * A small Prometheus client: counters, gauges and histograms with fixed label names, a
 * `Registry` that renders text exposition format 0.0.4, and a parser for tests.
 *
 * Hot path: `metric.labels(...)` returns a cached child; callers keep the child and call
 * `inc()` / `observe()` on it, which touch only numbers. Strings are built at scrape time.
 * Series per metric are bounded by `maxSeries`; label sets beyond it share one overflow
 * child whose label values are all `"_overflow"`, so a label with unbounded values (a bug)
 * cannot exhaust memory.
 * @module
 */

/** Content-Type of the text exposition format. */
export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** Default bound on label sets per metric. */
export const DEFAULT_MAX_SERIES = 10_000;

/** Label value used for series beyond `maxSeries`. */
export const OVERFLOW_LABEL_VALUE = "_overflow";

/** Default histogram buckets in seconds (Prometheus client defaults). */
export const DEFAULT_BUCKETS: readonly number[] = [
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
];

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** The metric types this client renders. */
export type MetricType = "counter" | "gauge" | "histogram";

/** Options shared by all metric constructors. */
export interface MetricOptions<L extends string> {
  /** Metric name, e.g. `skein_requests_total`. */
  name: string;
  /** One-line description for `# HELP`. */
  help: string;
  /** Label names, fixed for the metric's life. @default [] */
  labelNames?: readonly L[];
  /** Most label sets kept. @default 10000 */
  maxSeries?: number;
}

/** Escapes a label value: backslash, double quote and newline. */
export function escapeLabelValue(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

/** Escapes HELP text: backslash and newline. */
export function escapeHelp(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

/** Formats a sample value as Prometheus expects (`+Inf`, `-Inf`, `NaN`). */
export function formatValue(v: number): string {
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  if (Number.isNaN(v)) return "NaN";
  return String(v);
}

/** Anything a {@linkcode Registry} can render. */
export interface Collector {
  /** The metric family name. */
  readonly name: string;
  /** Appends the family's lines (HELP, TYPE, samples) to `out`. */
  collect(out: string[]): void;
}

abstract class _Metric<L extends string, C> implements Collector {
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly L[];
  abstract readonly type: MetricType;
  protected readonly _children = new Map<string, { values: readonly string[]; child: C }>();
  private readonly _maxSeries: number;
  private _overflow: C | undefined;

  constructor(opts: MetricOptions<L>, reserved: readonly string[] = []) {
    if (!METRIC_NAME.test(opts.name)) throw new Error(`invalid metric name "${opts.name}"`);
    const labelNames = opts.labelNames ?? [];
    for (const l of labelNames) {
      if (!LABEL_NAME.test(l) || l.startsWith("__") || reserved.includes(l)) {
        throw new Error(`metric ${opts.name}: invalid label name "${l}"`);
      }
    }
    if (new Set(labelNames).size !== labelNames.length) {
      throw new Error(`metric ${opts.name}: duplicate label names`);
    }
    this.name = opts.name;
    this.help = opts.help;
    this.labelNames = labelNames;
    this._maxSeries = opts.maxSeries ?? DEFAULT_MAX_SERIES;
  }

  protected abstract _newChild(): C;
  protected abstract _collectChild(out: string[], labels: string, child: C): void;

  /** The child for these label values (in `labelNames` order); cache it on hot paths. */
  labels(...values: string[]): C {
    if (values.length !== this.labelNames.length) {
      throw new Error(
        `metric ${this.name}: expected ${this.labelNames.length} label values (${
          this.labelNames.join(", ")
        }), got ${values.length}`,
      );
    }
    const key = values.length === 1 ? values[0]! : values.join("\u0000");
    const hit = this._children.get(key);
    if (hit !== undefined) return hit.child;
    if (this._children.size >= this._maxSeries) {
      return this._overflow ??= this._addChild(
        this.labelNames.map(() => OVERFLOW_LABEL_VALUE),
        this.labelNames.map(() => OVERFLOW_LABEL_VALUE).join("\u0000"),
      );
    }
    return this._addChild(values, key);
  }

  /** Number of label sets seen (including the overflow one). */
  seriesCount(): number {
    return this._children.size;
  }

  collect(out: string[]): void {
    out.push(`# HELP ${this.name} ${escapeHelp(this.help)}`);
    out.push(`# TYPE ${this.name} ${this.type}`);
    for (const { values, child } of this._children.values()) {
      this._collectChild(out, this._renderLabels(values), child);
    }
  }

  /** The unlabelled child, created on first use so an unused labelled metric renders no sample. */
  protected _default(): C {
    return this.labels();
  }

  private _addChild(values: readonly string[], key: string): C {
    const child = this._newChild();
    this._children.set(key, { values: [...values], child });
    return child;
  }

  private _renderLabels(values: readonly string[]): string {
    if (values.length === 0) return "";
    const parts: string[] = [];
    for (let i = 0; i < values.length; i++) {
      parts.push(`${this.labelNames[i]}="${escapeLabelValue(values[i]!)}"`);
    }
    return parts.join(",");
  }
}

/** A monotonically increasing value. */
export class CounterChild {
  /** Current value. */
  value = 0;
  /** Adds `n` (default 1); negative amounts are a programming error. */
  inc(n = 1): void {
    if (n < 0) throw new Error(`counter increment must be >= 0, got ${n}`);
    this.value += n;
  }
}

/** A counter family; name it with `_total`. */
export class Counter<L extends string = never> extends _Metric<L, CounterChild> {
  readonly type = "counter";
  /** Creates a counter; unlabelled counters render `0` before the first increment. */
  constructor(opts: MetricOptions<L>) {
    super(opts);
    if (this.labelNames.length === 0) this._default();
  }
  /** Increments the unlabelled counter. */
  inc(n = 1): void {
    this._default().inc(n);
  }
  protected _newChild(): CounterChild {
    return new CounterChild();
  }
  protected _collectChild(out: string[], labels: string, c: CounterChild): void {
    out.push(`${this.name}${labels ? `{${labels}}` : ""} ${formatValue(c.value)}`);
  }
}

/** A value that goes up and down. */
export class GaugeChild {
  /** Current value. */
  value = 0;
  /** Sets the value. */
  set(v: number): void {
    this.value = v;
  }
  /** Adds `n` (default 1). */
  inc(n = 1): void {
    this.value += n;
  }
  /** Subtracts `n` (default 1). */
  dec(n = 1): void {
    this.value -= n;
  }
}

/** A gauge family. */
export class Gauge<L extends string = never> extends _Metric<L, GaugeChild> {
  readonly type = "gauge";
  /** Creates a gauge; unlabelled gauges render `0` until set. */
  constructor(opts: MetricOptions<L>) {
    super(opts);
    if (this.labelNames.length === 0) this._default();
  }
  /** Sets the unlabelled gauge. */
  set(v: number): void {
    this._default().set(v);
  }
  /** Adds to the unlabelled gauge. */
  inc(n = 1): void {
    this._default().inc(n);
  }
  /** Subtracts from the unlabelled gauge. */
  dec(n = 1): void {
    this._default().dec(n);
  }
  protected _newChild(): GaugeChild {
    return new GaugeChild();
  }
  protected _collectChild(out: string[], labels: string, g: GaugeChild): void {
    out.push(`${this.name}${labels ? `{${labels}}` : ""} ${formatValue(g.value)}`);
  }
}

/** One histogram series: per-bucket counts (made cumulative at render), sum and count. */
export class HistogramChild {
  /** Upper bounds, ascending, without +Inf. */
  readonly bounds: readonly number[];
  /** Observations per bucket (not cumulative); the last slot is the +Inf bucket. */
  readonly counts: Float64Array;
  /** Sum of observations. */
  sum = 0;
  /** Number of observations. */
  count = 0;
  /** Creates an empty series. */
  constructor(bounds: readonly number[]) {
    this.bounds = bounds;
    this.counts = new Float64Array(bounds.length + 1);
  }
  /** Records one observation. */
  observe(v: number): void {
    const b = this.bounds;
    let i = 0;
    while (i < b.length && v > b[i]!) i++;
    this.counts[i]!++;
    this.sum += v;
    this.count++;
  }
}

/** Options of {@linkcode Histogram}. */
export interface HistogramOptions<L extends string> extends MetricOptions<L> {
  /** Bucket upper bounds, strictly ascending; +Inf is added. @default DEFAULT_BUCKETS */
  buckets?: readonly number[];
}

/** A histogram family with cumulative buckets, `_sum` and `_count`. */
export class Histogram<L extends string = never> extends _Metric<L, HistogramChild> {
  readonly type = "histogram";
  /** Bucket upper bounds, without +Inf. */
  readonly buckets: readonly number[];
  private readonly _le: readonly string[];
  /** Creates a histogram; `le` is reserved as a label name. */
  constructor(opts: HistogramOptions<L>) {
    super(opts, ["le"]);
    const b = (opts.buckets ?? DEFAULT_BUCKETS).filter((x) => x !== Infinity);
    for (let i = 0; i < b.length; i++) {
      if (!Number.isFinite(b[i]!) || (i > 0 && b[i]! <= b[i - 1]!)) {
        throw new Error(`histogram ${opts.name}: buckets must be finite and strictly ascending`);
      }
    }
    this.buckets = b;
    this._le = [...b.map(formatValue), "+Inf"];
    if (this.labelNames.length === 0) this._default();
  }
  /** Records an observation on the unlabelled histogram. */
  observe(v: number): void {
    this._default().observe(v);
  }
  protected _newChild(): HistogramChild {
    return new HistogramChild(this.buckets);
  }
  protected _collectChild(out: string[], labels: string, h: HistogramChild): void {
    const sep = labels ? `${labels},` : "";
    let cumulative = 0;
    for (let i = 0; i < this._le.length; i++) {
      cumulative += h.counts[i]!;
      out.push(`${this.name}_bucket{${sep}le="${this._le[i]}"} ${formatValue(cumulative)}`);
    }
    const braces = labels ? `{${labels}}` : "";
    out.push(`${this.name}_sum${braces} ${formatValue(h.sum)}`);
    out.push(`${this.name}_count${braces} ${formatValue(h.count)}`);
  }
}

/** A set of metrics rendered together on `/metrics`. */
export class Registry {
  private readonly _collectors = new Map<string, Collector>();
  private readonly _hooks: (() => void)[] = [];

  /** Adds a metric; names must be unique. Returns it for chaining. */
  register<M extends Collector>(m: M): M {
    if (this._collectors.has(m.name)) throw new Error(`metric ${m.name} registered twice`);
    this._collectors.set(m.name, m);
    return m;
  }

  /** Creates and registers a counter. */
  counter<L extends string = never>(opts: MetricOptions<L>): Counter<L> {
    return this.register(new Counter<L>(opts));
  }

  /** Creates and registers a gauge. */
  gauge<L extends string = never>(opts: MetricOptions<L>): Gauge<L> {
    return this.register(new Gauge<L>(opts));
  }

  /** Creates and registers a histogram. */
  histogram<L extends string = never>(opts: HistogramOptions<L>): Histogram<L> {
    return this.register(new Histogram<L>(opts));
  }

  /** Runs `hook` before each render, to refresh values computed on demand (e.g. cert expiry). */
  onCollect(hook: () => void): void {
    this._hooks.push(hook);
  }

  /** Renders all metrics in text exposition format 0.0.4. */
  render(): string {
    for (const h of this._hooks) h();
    const out: string[] = [];
    for (const c of this._collectors.values()) c.collect(out);
    return out.length === 0 ? "" : out.join("\n") + "\n";
  }
}

/** One parsed sample line. */
export interface ParsedSample {
  /** Sample name, e.g. `x_bucket`. */
  name: string;
  /** Label values by name, unescaped. */
  labels: Record<string, string>;
  /** The value. */
  value: number;
}

/** One parsed metric family. */
export interface ParsedFamily {
  /** Family name. */
  name: string;
  /** Unescaped HELP text. */
  help: string;
  /** Declared type. */
  type: string;
  /** Samples in order. */
  samples: ParsedSample[];
}

const _SAMPLE_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;

/**
 * Parses text exposition format strictly (for tests): every sample must belong to the family
 * of the latest TYPE line, label values must be properly quoted and escaped, values numeric.
 * Throws an error naming the line on anything malformed.
 */
export function parsePrometheusText(text: string): Map<string, ParsedFamily> {
  const families = new Map<string, ParsedFamily>();
  const helps = new Map<string, string>();
  let current: ParsedFamily | undefined;
  const lines = text.split("\n");
  if (text !== "" && lines.at(-1) !== "") throw new Error("exposition must end with a newline");
  for (let n = 0; n < lines.length; n++) {
    const line = lines[n]!;
    const where = `line ${n + 1}`;
    if (line === "") {
      if (n !== lines.length - 1) throw new Error(`${where}: empty line`);
      continue;
    }
    if (line.startsWith("# HELP ")) {
      const rest = line.slice(7);
      const sp = rest.indexOf(" ");
      const name = sp < 0 ? rest : rest.slice(0, sp);
      helps.set(name, _unescape(sp < 0 ? "" : rest.slice(sp + 1), false, where));
      continue;
    }
    if (line.startsWith("# TYPE ")) {
      const [name, type, ...extra] = line.slice(7).split(" ");
      if (!name || !type || extra.length > 0 || !METRIC_NAME.test(name)) {
        throw new Error(`${where}: malformed TYPE line`);
      }
      if (!["counter", "gauge", "histogram", "summary", "untyped"].includes(type)) {
        throw new Error(`${where}: unknown type ${type}`);
      }
      if (families.has(name)) throw new Error(`${where}: family ${name} declared twice`);
      current = { name, type, help: helps.get(name) ?? "", samples: [] };
      families.set(name, current);
      continue;
    }
    if (line.startsWith("#")) continue;
    const sample = _parseSample(line, where);
    const fam = current;
    const suffixes = fam?.type === "histogram" ? ["_bucket", "_sum", "_count"] : [""];
    if (fam === undefined || !suffixes.some((s) => sample.name === fam.name + s)) {
      throw new Error(`${where}: sample ${sample.name} outside its family's block`);
    }
    fam.samples.push(sample);
  }
  for (const [name, help] of helps) {
    const f = families.get(name);
    if (f !== undefined) f.help = help;
  }
  return families;
}

function _parseSample(line: string, where: string): ParsedSample {
  const m = _SAMPLE_NAME.exec(line);
  if (m === null) throw new Error(`${where}: expected a metric name`);
  const name = m[0];
  let i = name.length;
  const labels: Record<string, string> = {};
  if (line[i] === "{") {
    i++;
    while (line[i] !== "}") {
      const lm = /^([a-zA-Z_][a-zA-Z0-9_]*)="/.exec(line.slice(i));
      if (lm === null) throw new Error(`${where}: malformed label at column ${i + 1}`);
      i += lm[0].length;
      let raw = "";
      while (i < line.length && line[i] !== '"') {
        if (line[i] === "\\") {
          raw += line.slice(i, i + 2);
          i += 2;
        } else raw += line[i++];
      }
      if (i >= line.length) throw new Error(`${where}: unterminated label value`);
      i++; // closing quote
      if (lm[1]! in labels) throw new Error(`${where}: duplicate label ${lm[1]}`);
      labels[lm[1]!] = _unescape(raw, true, where);
      if (line[i] === ",") i++;
      else if (line[i] !== "}") throw new Error(`${where}: expected , or } at column ${i + 1}`);
    }
    i++;
  }
  if (line[i] !== " ") throw new Error(`${where}: expected a space before the value`);
  const parts = line.slice(i + 1).split(" ");
  if (parts.length > 2) throw new Error(`${where}: trailing data`);
  const v = parts[0]!;
  const value = v === "+Inf" ? Infinity : v === "-Inf" ? -Infinity : v === "NaN" ? NaN : Number(v);
  if (v === "" || (Number.isNaN(value) && v !== "NaN")) {
    throw new Error(`${where}: bad value "${v}"`);
  }
  return { name, labels, value };
}

function _unescape(s: string, quotes: boolean, where: string): string {
  let out = "";
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c !== "\\") {
      if (c === "\n" || (quotes && c === '"')) throw new Error(`${where}: unescaped ${c}`);
      out += c;
      continue;
    }
    const next = s[++i];
    if (next === "\\") out += "\\";
    else if (next === "n") out += "\n";
    else if (next === '"' && quotes) out += '"';
    else throw new Error(`${where}: bad escape \\${next ?? ""}`);
  }
  return out;
}
