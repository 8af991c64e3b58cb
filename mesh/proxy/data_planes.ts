/**
 * The data planes of a proxy as the main thread sees them: one interface
 * ({@linkcode DataPlanes}) so the proxy assembly does not care whether there is one in-process
 * ({@linkcode LocalDataPlanes}, `workers: 1`, here) or one per worker thread
 * (`WorkerDataPlanes`, `workers.ts`).
 * @module
 */
import type { ProxyConfig } from "../../config/proxy_schema.ts";
import type { Logger } from "../../common/log.ts";
import type { TlsMaterial } from "../../common/tls/mod.ts";
import { type Catalog, prepareCatalog } from "../discovery/catalog.ts";
import {
  DataPlane,
  type DataPlaneOptions,
  type DataPlaneSnapshot,
  type ListenerPorts,
} from "./data_plane.ts";
import { listenMtls, type MeshTls, MeshTlsState, type MeshTrust } from "../tls/mod.ts";
import { SharedLimits } from "../resilience/shared_limits.ts";
import { bindIngress, closeIngress } from "../ingress/mod.ts";
import type { DataPlaneChange, DataPlaneChangeResult } from "./plane_change.ts";

/** The data planes of one proxy. */
export interface DataPlanes {
  /** The bound traffic ports. */
  readonly ports: ListenerPorts;
  /** How many data planes serve traffic. */
  readonly count: number;
  /** Hands a new catalog to every data plane. */
  applyCatalog(c: Catalog): void;
  /** Snapshots of every data plane that answered in time. */
  snapshots(): Promise<DataPlaneSnapshot[]>;
  /** Stops accepting and drains every data plane (bounded by `ms` plus a grace period). */
  drain(ms: number): Promise<void>;
  /**
   * New certificate, key and bundle for new mTLS handshakes in every data plane (inbound and
   * outbound); established connections are kept. `service` says whose certificate it is
   * (default: the first local service's). No-op without an identity.
   */
  updateMaterial(m: TlsMaterial, service?: string): void;
  /**
   * New trust bundle and revocation list in every data plane; open connections from or to a
   * newly revoked identity are closed. No-op without an identity.
   */
  updateTrust(t: MeshTrust): void;
  /**
   * Applies a configuration reload to every data plane (see `DataPlane.reconfigure`);
   * `running` is the configuration in force afterwards (what a restarted worker starts with).
   */
  reconfigure(
    c: Omit<DataPlaneChange, "ports">,
    running: ProxyConfig,
  ): Promise<DataPlaneChangeResult>;
  /** Worker threads restarted after a crash since start. */
  readonly restarts: number;
  /** Whether every data plane is serving (false: one crashed and could not be restarted). */
  live(): boolean;
}

/** One data plane on the main thread. */
export class LocalDataPlanes implements DataPlanes {
  readonly count = 1;
  readonly restarts = 0;
  readonly #plane: DataPlane;
  readonly #tls: MeshTlsState | null;
  readonly #log: Logger;

  /** Binds the configured ports in this thread (the inbound one may come bound, for mTLS). */
  constructor(
    config: ProxyConfig,
    logger: Logger,
    extra: Pick<DataPlaneOptions, "tls" | "inboundListener" | "ingressListeners"> = {},
  ) {
    const tls = extra.tls === undefined ? undefined : MeshTlsState.of(extra.tls);
    this.#tls = tls ?? null;
    this.#log = logger;
    this.#plane = DataPlane.start({
      config,
      logger,
      limits: new SharedLimits(),
      ...extra,
      ...(tls !== undefined ? { tls } : {}),
    });
  }

  /** Binds the configured ports in this thread; with `tls`, the inbound listener is mTLS. */
  static async start(config: ProxyConfig, logger: Logger, tls?: MeshTls): Promise<LocalDataPlanes> {
    const ingressListeners = await bindIngress(config.ingress ?? [], logger);
    try {
      if (tls === undefined) return new LocalDataPlanes(config, logger, { ingressListeners });
      const state = new MeshTlsState(tls);
      const inboundListener = await listenMtls(
        state,
        config.inbound.hostname,
        config.inbound.port,
        logger.with({ component: "inbound_tls" }),
      );
      try {
        return new LocalDataPlanes(config, logger, {
          tls: state,
          inboundListener,
          ingressListeners,
        });
      } catch (e) {
        inboundListener.close();
        throw e;
      }
    } catch (e) {
      closeIngress(ingressListeners);
      throw e;
    }
  }

  /** Swaps `service`'s material for new handshakes. */
  updateMaterial(m: TlsMaterial, service?: string): void {
    this.#tls?.updateMaterial(m, service);
  }

  /** Swaps the bundle and revocations; closes connections of newly revoked peers. */
  updateTrust(t: MeshTrust): void {
    this.#tls?.updateTrust(t);
  }

  /** The bound traffic ports. */
  get ports(): ListenerPorts {
    return this.#plane.ports;
  }

  /** Reads the catalog's resources and applies it at once. */
  applyCatalog(c: Catalog): void {
    this.#plane.applyCatalog(prepareCatalog(c, this.#log));
  }

  /** Applies a reload in this thread. */
  reconfigure(c: Omit<DataPlaneChange, "ports">): Promise<DataPlaneChangeResult> {
    return Promise.resolve(this.#plane.reconfigure({ ...c, ports: {} }));
  }

  /** The one snapshot. */
  snapshots(): Promise<DataPlaneSnapshot[]> {
    return Promise.resolve([this.#plane.snapshot()]);
  }

  /** Drains the listeners. */
  drain(ms: number): Promise<void> {
    return this.#plane.drain(ms);
  }

  /** In this thread: alive while the process answers. */
  live(): boolean {
    return true;
  }
}
