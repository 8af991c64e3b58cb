/**
 * `deno task bench fleet`: the long profile of the fleet tests. Ten leader-isolation rounds on
 * a control cluster whose nodes run on hosts of their own (network namespaces, nftables), each
 * printing the time from the cut to the first write a survivor acknowledged, the isolated
 * side's acknowledgements after the cut (must be 0) and the acknowledged writes lost (must be 0).
 * Needs root with `ip` and `nft`.
 * @module
 */
import { leaderIsolationRound, startControlFleet } from "../tests/fleet/control_fleet.ts";
import { fleetSupported } from "../tests/fleet/netns.ts";

/** Rounds of the long profile (the target is stated over ten runs). */
export const FLEET_ROUNDS = 10;

/** Runs the rounds and prints one line each plus a summary; throws when a safety check fails. */
export async function runFleetBench(rounds = FLEET_ROUNDS): Promise<void> {
  if (!fleetSupported()) throw new Error("the fleet bench needs root with ip and nft");
  const cf = await startControlFleet(3);
  const failovers: number[] = [];
  let unsafe = 0;
  try {
    for (let i = 1; i <= rounds; i++) {
      const r = await leaderIsolationRound(cf, i);
      console.log(
        `round ${i}: isolated ${r.isolated} at ${r.cutAt}, failover ${r.failoverMs} ms ` +
          `(first via ${r.firstVia}), acked ${r.acked}, ` +
          `isolated acks ${r.isolatedAcks}, lost ${r.lost.length}`,
      );
      if (r.failoverMs !== null) failovers.push(r.failoverMs);
      if (r.isolatedAcks > 0 || r.lost.length > 0 || r.failoverMs === null) unsafe++;
    }
  } finally {
    await cf.destroy();
  }
  const s = [...failovers].sort((a, b) => a - b);
  console.log(
    `leader isolation → first write elsewhere: min ${s[0]} ms, median ${
      s[Math.floor(s.length / 2)]
    } ms, max ${s[s.length - 1]} ms over ${s.length} rounds; rounds with a failed check: ${unsafe}`,
  );
  if (unsafe > 0) throw new Error(`${unsafe} rounds failed a check`);
}
