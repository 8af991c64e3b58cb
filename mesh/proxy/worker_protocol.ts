/**
 * Messages between the proxy's main thread and its data-plane worker threads. Everything
 * here is structured-cloneable; the shared limits travel as a `SharedArrayBuffer`, which both
 * sides then see as the same memory.
 * @module
 */
import type { ProxyConfig } from "../../config/mod.ts";
import type { LogFields, LogLevel } from "../../common/log.ts";
import type { Catalog } from "../discovery/mod.ts";
import type { DataPlaneSnapshot, ListenerPorts } from "./data_plane.ts";

/** What the main thread sends a worker. */
export type ToWorker =
  | {
    type: "start";
    config: ProxyConfig;
    index: number;
    workers: number;
    ports: ListenerPorts;
    limits: SharedArrayBuffer;
    logLevel: LogLevel;
  }
  | { type: "catalog"; catalog: Catalog }
  | { type: "snapshot"; id: number }
  | { type: "drain"; ms: number };

/** What a worker sends the main thread. */
export type ToMain =
  | { type: "started"; ports: ListenerPorts }
  | { type: "failed"; message: string }
  | { type: "log"; level: LogLevel; msg: string; fields: LogFields }
  | { type: "snapshot"; id: number; snapshot: DataPlaneSnapshot }
  | { type: "drained" };
