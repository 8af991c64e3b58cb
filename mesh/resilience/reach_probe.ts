/**
 * The reach probe: whether a TCP connection to an endpoint can be made now. The proxy runs it on
 * endpoints ejected for being unreachable (failed connects and resets only, see
 * `OutlierDetector.restoreReachable` in `outlier.ts`), so a host that was cut off and healed
 * comes back into rotation within a probe interval (`PROBE_INTERVAL_MS`) instead of after its
 * whole ejection.
 * @module
 */

/** How often ejected, unreachable endpoints are probed, in ms. */
export const PROBE_INTERVAL_MS = 1_000;
/** Bound on one probe's connect, in ms. */
export const PROBE_TIMEOUT_MS = 1_000;

/** Resolves true when a TCP connection to `hostname:port` opens within the timeout. */
export async function tcpReachable(hostname: string, port: number): Promise<boolean> {
  try {
    const c = await Deno.connect({
      hostname,
      port,
      signal: AbortSignal.timeout(PROBE_TIMEOUT_MS),
    });
    c.close();
    return true;
  } catch {
    return false;
  }
}
