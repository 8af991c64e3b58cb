/**
 * Merges the Prometheus expositions of several data-plane workers into one, so `/metrics`
 * reads as if one process had counted everything: samples with the same name and labels are
 * summed. That is right for every family the proxy exports: counters and histogram buckets,
 * sums and counts add up across workers, and the gauges are per-worker counts of open
 * connections, which add up too. Families keep the order in which they first appear.
 * @module
 */
import { formatValue } from "../../common/metrics.ts";

interface _Family {
  /** `# HELP` and `# TYPE` lines, from the first exposition that had them. */
  header: string[];
  /** Sample key (name and label block) to summed value, in first-seen order. */
  samples: Map<string, number>;
}

/** Sums samples with identical name and labels across `texts` (each a full exposition). */
export function mergeExpositions(texts: readonly string[]): string {
  if (texts.length === 1) return texts[0]!;
  const families = new Map<string, _Family>();
  for (const text of texts) {
    let fam: _Family | undefined;
    for (const line of text.split("\n")) {
      if (line === "") continue;
      if (line.startsWith("# HELP ") || line.startsWith("# TYPE ")) {
        const end = line.indexOf(" ", 7);
        const name = end < 0 ? line.slice(7) : line.slice(7, end);
        fam = families.get(name);
        if (fam === undefined) {
          fam = { header: [], samples: new Map() };
          families.set(name, fam);
        }
        if (fam.header.length < 2 && !fam.header.includes(line)) fam.header.push(line);
        continue;
      }
      if (line.startsWith("#")) continue;
      // A sample is `name{labels} value`; label values may hold spaces, the value cannot.
      const sp = line.lastIndexOf(" ");
      if (sp <= 0 || fam === undefined) continue;
      const key = line.slice(0, sp);
      const v = Number(line.slice(sp + 1));
      fam.samples.set(key, (fam.samples.get(key) ?? 0) + v);
    }
  }
  const out: string[] = [];
  for (const f of families.values()) {
    out.push(...f.header);
    for (const [k, v] of f.samples) out.push(`${k} ${formatValue(v)}`);
  }
  return out.length === 0 ? "" : out.join("\n") + "\n";
}
