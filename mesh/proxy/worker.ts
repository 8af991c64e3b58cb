/**
 * Entry point of a data-plane worker thread (a Web Worker started by
 * {@linkcode WorkerDataPlanes}). It runs one {@linkcode DataPlane} on the ports the main
 * thread chose, with `SO_REUSEPORT`, and answers the main thread's messages: catalog
 * updates, TLS material and trust updates, snapshots for the admin pages, and drain. Its log
 * events go to the main thread's logger.
 *
 * With an identity, the worker binds its own `node:tls` inbound server on the shared port
 * (also `SO_REUSEPORT`), so every worker terminates mTLS for the connections the kernel
 * gives it, and keeps its own {@linkcode MeshTlsState} for both directions.
 *
 * The module does nothing unless it runs inside a worker, so importing it statically (which
 * makes `deno compile` embed it) is harmless.
 * @module
 */
import type { LogFields, Logger, LogLevel } from "../../common/log.ts";
import { DataPlane } from "./data_plane.ts";
import { notStartedResult } from "./plane_change.ts";
import { listenMtls, MeshTlsState } from "../tls/mod.ts";
import { bindIngress, closeIngress, type IngressBinding } from "../ingress/mod.ts";
import { SharedLimits } from "../resilience/shared_limits.ts";
import { SessionBalance } from "../mux/session_balance.ts";
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
  let tls: MeshTlsState | null = null;
  let log: Logger | null = null;
  const start = async (m: Extract<ToWorker, { type: "start" }>): Promise<void> => {
    log = _workerLogger(scope, m.logLevel, { worker: m.index });
    let inbound: Deno.Listener | undefined;
    let ingress: IngressBinding[] = [];
    try {
      ingress = await bindIngress(m.config.ingress ?? [], log, {
        ports: m.ports.ingress ?? [],
        reusePort: true,
        reportReloads: m.index === 0,
      });
      if (m.tls !== undefined) {
        tls = new MeshTlsState(m.tls);
        inbound = await listenMtls(
          tls,
          m.config.inbound.hostname,
          m.ports.inbound,
          log.with({ component: "inbound_tls" }),
          {
            reusePort: true,
            balance: new SessionBalance(m.sessionBalance, m.index, m.workers),
          },
        );
      }
      plane = DataPlane.start({
        config: m.config,
        logger: log,
        limits: new SharedLimits(m.limits, m.index),
        index: m.index,
        workers: m.workers,
        ports: m.ports,
        reusePort: true,
        ...(tls !== null ? { tls, inboundListener: inbound } : {}),
        ingressListeners: ingress,
      });
      scope.postMessage({ type: "started", ports: plane.ports });
    } catch (err) {
      inbound?.close();
      closeIngress(ingress);
      scope.postMessage({ type: "failed", message: (err as Error).message ?? String(err) });
    }
  };
  const handle = async (m: ToWorker): Promise<void> => {
    switch (m.type) {
      case "start":
        await start(m);
        break;
      case "catalog":
        plane?.applyCatalog(m.prepared);
        break;
      case "tls_material":
        tls?.updateMaterial(m.material, m.service);
        break;
      case "tls_trust": {
        const closed = tls?.updateTrust(m.trust) ?? 0;
        if (closed > 0) log?.info("closed connections of revoked or distrusted peers", { closed });
        break;
      }
      case "snapshot":
        if (plane !== null) {
          scope.postMessage({ type: "snapshot", id: m.id, snapshot: plane.snapshot() });
        }
        break;
      case "reconfigure": {
        const result = plane?.reconfigure(m.change) ?? notStartedResult(m.change);
        scope.postMessage({ type: "reconfigured", id: m.id, result });
        break;
      }
      case "drain":
        if (plane === null) {
          scope.postMessage({ type: "drained" });
          break;
        }
        plane.drain(m.ms).finally(() => scope.postMessage({ type: "drained" }));
        break;
    }
  };
  // "start" binds asynchronously (the mTLS server); later messages wait for it, in order.
  let queue = Promise.resolve();
  scope.onmessage = (e) => {
    const m = e.data;
    queue = queue.then(() => handle(m)).catch((err) => {
      log?.error("data-plane worker message failed", { type: m.type, err: err as Error });
    });
  };
}

// Only a worker has `WorkerGlobalScope`; in the main thread (or a compiled binary that merely
// embeds this module) there is nothing to do.
if (typeof (globalThis as { WorkerGlobalScope?: unknown }).WorkerGlobalScope !== "undefined") {
  _serve(globalThis as unknown as _WorkerScope);
}
