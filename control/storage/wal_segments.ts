/**
 * The WAL's segment files: their names (`wal-<seq>.log`, `seq` zero-padded to 10 digits,
 * starting at 1, contiguous) and listing the segments of a directory in order.
 * @module
 */
import type { Logger } from "../../common/log.ts";
import type { StorageFs } from "./fs.ts";
import { WalCorruptError } from "./wal_types.ts";

const _SEGMENT_RE = /^wal-(\d+)\.log$/;
const _SEQ_DIGITS = 10;

/** Returns the file name of segment `seq`. */
export function walSegmentName(seq: number): string {
  return `wal-${String(seq).padStart(_SEQ_DIGITS, "0")}.log`;
}

/** Joins a directory and a file name. */
export function walPath(dir: string, name: string): string {
  return dir.endsWith("/") ? dir + name : `${dir}/${name}`;
}

/**
 * The segment numbers in `dir`, ascending; throws {@linkcode WalCorruptError} when one is
 * missing between two present ones.
 */
export async function listWalSegments(dir: string, fs: StorageFs, log: Logger): Promise<number[]> {
  const seqs: number[] = [];
  for (const name of await fs.readDir(dir)) {
    const m = _SEGMENT_RE.exec(name);
    if (m) seqs.push(Number(m[1]));
    else if (name.startsWith("wal-")) log.warn("ignoring unexpected file in WAL dir", { name });
  }
  seqs.sort((a, b) => a - b);
  for (let i = 1; i < seqs.length; i++) {
    const want = seqs[i - 1]! + 1;
    if (seqs[i] !== want) {
      throw new WalCorruptError(
        walPath(dir, walSegmentName(want)),
        0,
        `segment is missing between ${walSegmentName(seqs[i - 1]!)} and ${
          walSegmentName(seqs[i]!)
        }`,
      );
    }
  }
  return seqs;
}
