/**
 * Messages between the proxy's main thread and its data-plane worker threads. Everything
 * here is structured-cloneable; the shared limits travel as a `SharedArrayBuffer`, which both
 * sides then see as the same memory.
 * @module
 */
import type { ProxyConfig } from "../../config/proxy_schema.ts";
import type { LogFields, LogLevel } from "../../common/log.ts";
import type { PreparedCatalog } from "../discovery/catalog.ts";
import type { TlsMaterial } from "../../common/tls/mod.ts";
import type { DataPlaneSnapshot, ListenerPorts } from "./data_plane.ts";
import type { MeshTls, MeshTrust } from "../tls/mod.ts";
import type { DataPlaneChange, DataPlaneChangeResult } from "./plane_change.ts";

/** What the main thread sends a worker. */
export type ToWorker =
  | {
    type: "start";
    config: ProxyConfig;
    index: number;
    workers: number;
    ports: ListenerPorts;
    limits: SharedArrayBuffer;
    /** The inbound mux session counts of every worker (see mesh/mux/session_balance.ts). */
    sessionBalance: SharedArrayBuffer;
    logLevel: LogLevel;
    /** The proxy's identity: the worker binds its own mTLS inbound server (SO_REUSEPORT). */
    tls?: MeshTls;
  }
  /** The catalog with its resources read by the main thread. */
  | { type: "catalog"; prepared: PreparedCatalog }
  /** `service` names whose certificate it is; absent: the first local service's. */
  | { type: "tls_material"; material: TlsMaterial; service?: string }
  | { type: "tls_trust"; trust: MeshTrust }
  | { type: "snapshot"; id: number }
  /** A configuration reload; answered with "reconfigured" and the same id. */
  | { type: "reconfigure"; id: number; change: DataPlaneChange }
  | { type: "drain"; ms: number };

/** What a worker sends the main thread. */
export type ToMain =
  | { type: "started"; ports: ListenerPorts }
  | { type: "failed"; message: string }
  | { type: "log"; level: LogLevel; msg: string; fields: LogFields }
  | { type: "snapshot"; id: number; snapshot: DataPlaneSnapshot }
  | { type: "reconfigured"; id: number; result: DataPlaneChangeResult }
  | { type: "drained" };
