/**
 * After `101 Switching Protocols` (a WebSocket, a TCP tunnel's callee end): both connections
 * joined byte for byte until both end, under the upgraded idle timeout, and closed when a
 * policy change no longer allows the caller.
 * @module
 */
import { type ResponseHead, writeForwardedResponseHead } from "../http1/mod.ts";
import { pipe, writeAll } from "../conn/io.ts";
import type { OpenUpgrade } from "./open_upgrades.ts";
import type { UpstreamConn } from "./pool.ts";
import { Done } from "./exchange.ts";
import type { Session } from "./session.ts";

/** Relays the 101 head, then joins the client and upstream connections until both end. */
export async function splice(
  s: Session,
  uc: UpstreamConn,
  res: ResponseHead,
  start: number,
  filled: number,
  stillAllowed: (() => boolean) | undefined,
): Promise<Done> {
  const f = s.f;
  s.x.sentStatus = res.status;
  const w = s.out;
  w.reset();
  writeForwardedResponseHead(w, res, false);
  w.bytes(uc.buf, start, filled);
  try {
    await writeAll(s.conn, w.view());
    if (s.len > s.pos) await writeAll(uc.conn, s.buf.subarray(s.pos, s.len));
  } catch {
    f.upstreams.discard(uc);
    return Done.Close;
  }
  s.pos = s.len = 0;
  // Silent both ways for the idle timeout: both ends go, not just the one that noticed (a
  // clean end of one side would only half-close the other and leave it held).
  const idle = f.upgraded.watch(() => {
    f.upstreams.discard(uc);
    s.abort();
  });
  const watched: OpenUpgrade | null = stillAllowed === undefined ? null : {
    stillAllowed,
    close: () => {
      f.upstreams.discard(uc);
      s.abort();
    },
  };
  if (watched !== null) f.rechecked.add(watched);
  try {
    await Promise.all([
      pipe(s.conn, uc.conn, s.buf, idle.touch).then((r) => {
        if (r.failed) f.upstreams.discard(uc);
      }),
      pipe(uc.conn, s.conn, uc.buf, idle.touch).then((r) => {
        if (r.failed) s.abort();
      }),
    ]);
  } finally {
    idle.stop();
    if (watched !== null) f.rechecked.remove(watched);
  }
  f.upstreams.discard(uc);
  return Done.Close;
}
