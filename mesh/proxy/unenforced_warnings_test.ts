import { assertEquals } from "../../tests/assert.ts";
import { type LogFields, type Logger, nullLogger } from "../../common/log.ts";
import { MAX_UNENFORCED_WARNINGS, UnenforcedWarnings } from "./proxy.ts";

/** A logger that keeps its warnings. */
function recording(): { log: Logger; warned: LogFields[] } {
  const warned: LogFields[] = [];
  return {
    log: { ...nullLogger, warn: (_m: string, f?: LogFields) => warned.push(f ?? {}) },
    warned,
  };
}

const RETIRED = { kind: "Policy", service: "ledger", circuit_breaker: { max_connections: 9 } };
const ROUTE = { kind: "Policy", service: "ledger", circuit_breaker: { max_pending: 5 } };

Deno.test("UnenforcedWarnings warns once per part, skipping unreadable resources", () => {
  const { log, warned } = recording();
  const w = new UnenforcedWarnings(log);
  assertEquals(w.check([{ kind: "Policy", service: "ledger" }]), []);
  assertEquals(w.check([RETIRED, { kind: "ExternalService", name: "bad", hosts: [] }]), [
    "Policy/ledger circuit_breaker.max_connections",
  ]);
  // The same resources again, and later with one more: only the new part is reported.
  assertEquals(w.check([RETIRED, { kind: "ExternalService", name: "bad", hosts: [] }]), []);
  assertEquals(w.check([ROUTE, RETIRED]), ["Policy/ledger circuit_breaker.max_pending"]);
  assertEquals(warned.map((f) => f.part), [
    "Policy/ledger circuit_breaker.max_connections",
    "Policy/ledger circuit_breaker.max_pending",
  ]);
});

Deno.test("UnenforcedWarnings stops remembering new parts at its bound", () => {
  const { log, warned } = recording();
  const w = new UnenforcedWarnings(log);
  const many = Array.from({ length: MAX_UNENFORCED_WARNINGS + 5 }, (_, i) => ({
    ...RETIRED,
    service: `s${i}`,
  }));
  assertEquals(w.check(many).length, MAX_UNENFORCED_WARNINGS);
  assertEquals(warned.length, MAX_UNENFORCED_WARNINGS);
});
