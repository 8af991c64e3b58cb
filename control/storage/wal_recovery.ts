/**
 * Reading a WAL back at open: every valid record of every segment, and the torn-tail rule.
 *
 * - Any invalid frame in a segment that is not the last one: {@linkcode WalCorruptError}.
 * - In the last segment, the first invalid frame starts a *torn tail* only when no valid
 *   frame can be found at any later byte offset; the tail is then truncated and reported.
 *   If a valid frame follows, the damage is in the middle of the log:
 *   {@linkcode WalCorruptError}. Valid data is never dropped silently.
 * - A missing segment between two present ones: {@linkcode WalCorruptError}.
 *
 * Known limit of this rule: if power fails between a batch's write and its fsync and the
 * kernel had written back a later page of that batch but not an earlier one, a valid frame
 * follows the damage and open() reports corruption although nothing acknowledged was lost.
 * That errs on the safe side (the node refuses to start rather than dropping data).
 * @module
 */
import type { Logger } from "../../common/log.ts";
import type { StorageFs } from "./fs.ts";
import { nextValidWalFrame, scanWalFrames } from "./wal_codec.ts";
import { walPath, walSegmentName } from "./wal_segments.ts";
import { type RecoveredRecord, type TornTail, WalCorruptError } from "./wal_types.ts";

/** What reading the segments found. */
export interface WalRecovered {
  /** Every valid record, in log order. */
  records: RecoveredRecord[];
  /** The torn tail truncated from the last segment, if there was one. */
  tornTail: TornTail | null;
  /** Size of the last segment after any truncation. */
  activeBytes: number;
}

/**
 * Reads segments `seqs` of `dir` in order, truncating a torn tail of the last one; throws
 * {@linkcode WalCorruptError} for any other damage.
 */
export async function recoverWalSegments(
  dir: string,
  fs: StorageFs,
  log: Logger,
  seqs: readonly number[],
): Promise<WalRecovered> {
  const records: RecoveredRecord[] = [];
  let tornTail: TornTail | null = null;
  let activeBytes = 0;
  for (let i = 0; i < seqs.length; i++) {
    const seq = seqs[i]!;
    const path = walPath(dir, walSegmentName(seq));
    const buf = await fs.readFile(path);
    const scan = scanWalFrames(buf);
    for (const r of scan.records) {
      records.push({ kind: r.kind, payload: r.payload, segment: seq });
    }
    activeBytes = buf.length;
    if (scan.badAt === null) continue;
    if (i !== seqs.length - 1) {
      throw new WalCorruptError(path, scan.badAt, `${scan.reason} (not the last segment)`);
    }
    const next = nextValidWalFrame(buf, scan.badAt);
    if (next >= 0) {
      throw new WalCorruptError(
        path,
        scan.badAt,
        `${scan.reason}, but a valid record follows at byte ${next}`,
      );
    }
    tornTail = {
      file: path,
      offset: scan.badAt,
      droppedBytes: buf.length - scan.badAt,
      reason: scan.reason,
    };
    log.warn("WAL torn tail truncated", {
      file: path,
      offset: scan.badAt,
      dropped_bytes: tornTail.droppedBytes,
      reason: scan.reason,
    });
    await fs.truncate(path, scan.badAt);
    activeBytes = scan.badAt;
  }
  return { records, tornTail, activeBytes };
}
