/**
 * `skein ca create`: makes the CA seed (root certificate and key) that every control node of a
 * cluster is given, so control nodes can speak mTLS to each other before Raft replicates the CA.
 * @module
 */
import { createCa, SeedCaError, writeSeedCa } from "../control/ca/mod.ts";
import { isTrustDomain } from "../common/tls/mod.ts";
import { type CommandIo, EXIT } from "./cli/io.ts";

/** Options of {@linkcode runCaCreate}. */
export interface CaCreateOptions {
  /** Directory that receives `ca.pem` and `ca.key`. */
  outDir: string;
  /** Trust domain of every SPIFFE id the CA issues. */
  trustDomain: string;
  io: CommandIo;
}

/** Creates `ca.pem` (public) and `ca.key` (0600) in `outDir`; refuses to overwrite either. */
export async function runCaCreate(opts: CaCreateOptions): Promise<number> {
  if (!isTrustDomain(opts.trustDomain)) {
    opts.io.stderr(
      `skein ca create: --trust-domain: expected a DNS-like name, got ${opts.trustDomain}\n`,
    );
    return EXIT.usage;
  }
  const state = await createCa({ trustDomain: opts.trustDomain, now: Date.now() });
  try {
    await writeSeedCa(opts.outDir, state);
  } catch (e) {
    if (!(e instanceof SeedCaError)) throw e;
    opts.io.stderr(`skein ca create: ${e.message}\n`);
    return EXIT.failure;
  }
  opts.io.stdout(
    `wrote ${opts.outDir}/ca.pem and ${opts.outDir}/ca.key (0600) for trust domain ${opts.trustDomain}\n` +
      `copy both to every control node (tls.ca_cert_file, tls.ca_key_file) and ca.pem to every proxy (ca_file)\n`,
  );
  return EXIT.ok;
}
