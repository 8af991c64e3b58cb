/**
 * Entry point of a data-plane worker thread (a Web Worker started by
 * {@linkcode WorkerDataPlanes}). It runs one {@linkcode DataPlane} on the ports the main
 * thread chose, with `SO_REUSEPORT`, and answers the main thread's messages: catalog
 * updates, snapshots for the admin pages, and drain. Its log events go to the main thread's
 * logger.
 *
 * The module does nothing unless it runs inside a worker, so importing it statically (which
 * makes `deno compile` embed it) is harmless.
 * @module
 */
import type { LogFields, Logger, LogLevel } from "../../common/log.ts";
import { DataPlane } from "./data_plane.ts";
import { SharedLimits } from "./shared_limits.ts";
import type { ToMain, ToWorker } from "./worker_protocol.ts";

interface _WorkerScope {
  postMessage(m: ToMain): void;
  onmessage: ((e: MessageEvent<ToWorker>) => void) | null;
  close(): void;
}

const _RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** A logger that hands events to the main thread, which writes them. */
function _workerLogger(scope: _WorkerScope, level: LogLevel, base: LogFields): Logger {
  const min = _RANK[level];
  const emit = (l: LogLevel, msg: string, fields?: LogFields) => {
    if (_RANK[l] < min) return;
    scope.postMessage({ type: "log", level: l, msg, fields: { ...base, ...fields } });
  };
  return {
    debug: (m, f) => emit("debug", m, f),
    info: (m, f) => emit("info", m, f),
    warn: (m, f) => emit("warn", m, f),
    error: (m, f) => emit("error", m, f),
    with: (f) => _workerLogger(scope, level, { ...base, ...f }),
    enabled: (l) => _RANK[l] >= min,
  };
}

function _serve(scope: _WorkerScope): void {
  let plane: DataPlane | null = null;
  scope.onmessage = (e) => {
    const m = e.data;
    switch (m.type) {
      case "start": {
        const log = _workerLogger(scope, m.logLevel, { worker: m.index });
        try {
          plane = DataPlane.start({
            config: m.config,
            logger: log,
            limits: new SharedLimits(m.limits),
            index: m.index,
            workers: m.workers,
            ports: m.ports,
            reusePort: true,
          });
          scope.postMessage({ type: "started", ports: plane.ports });
        } catch (err) {
          scope.postMessage({ type: "failed", message: (err as Error).message ?? String(err) });
        }
        break;
      }
      case "catalog":
        plane?.applyCatalog(m.catalog);
        break;
      case "snapshot":
        if (plane !== null) {
          scope.postMessage({ type: "snapshot", id: m.id, snapshot: plane.snapshot() });
        }
        break;
      case "drain":
        if (plane === null) {
          scope.postMessage({ type: "drained" });
          break;
        }
        plane.drain(m.ms).finally(() => scope.postMessage({ type: "drained" }));
        break;
    }
  };
}

// Only a worker has `WorkerGlobalScope`; in the main thread (or a compiled binary that merely
// embeds this module) there is nothing to do.
if (typeof (globalThis as { WorkerGlobalScope?: unknown }).WorkerGlobalScope !== "undefined") {
  _serve(globalThis as unknown as _WorkerScope);
}
