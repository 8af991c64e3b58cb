/**
 * skein-mux/1's session-level vocabulary: the protocol constants and default bounds, the
 * transport a session runs over, its counters, and {@linkcode StreamHost}, the part of a
 * session a stream calls. Shared by `session.ts` and `stream.ts` so neither imports the other
 * both ways.
 * @module
 */
import type { FrameTypeValue } from "./frame.ts";

/** Unread bytes a sender may have in flight per stream (a protocol constant: both ends use it). */
export const STREAM_WINDOW_BYTES = 128 * 1024;
/** Streams one session carries at once by default; beyond it new streams are refused. */
export const DEFAULT_MAX_STREAMS = 512;
/** Queued outgoing bytes above which stream writes wait for the connection to drain. */
export const DEFAULT_MAX_BUFFERED_BYTES = 1024 * 1024;
/**
 * How long a server that sent GoAway keeps the connection open for streams the client opened
 * before the GoAway reached it, in ms: those get Refused (safe to retry) instead of a reset.
 */
export const DEFAULT_GOAWAY_GRACE_MS = 1_000;
/**
 * Queued outgoing bytes at which the session gives up on its peer, as a multiple of the
 * buffered-bytes cap. Stream data stops at that cap (plus one frame), so only control frames the
 * peer provokes while not reading (a Refused per Open beyond the stream limit, say) get this far.
 */
export const MAX_QUEUED_BYTES_FACTOR = 4;
/** How long writers may wait on a congested session with no write completing, in ms. */
export const DEFAULT_STALL_TIMEOUT_MS = 30_000;
/** How long a session with no stream stays open on the server side, in ms. */
export const DEFAULT_SERVER_IDLE_SESSION_MS = 5 * 60_000;
/** How long a finishing session waits for its last frames to go out before it just closes. */
export const CLOSE_FLUSH_TIMEOUT_MS = 5_000;
/** Smallest buffer a stream's queued received bytes are copied into (small frames share it). */
export const RECV_CHUNK_BYTES = 4096;
/**
 * Client role: how often the session checks that its peer still answers, in ms. A check that
 * finds nothing received since the last one, while streams are open, sends a Ping.
 */
export const DEFAULT_PING_INTERVAL_MS = 250;
/**
 * Client role: a peer that sends nothing (no Pong, no frame at all) for this long after a Ping
 * loses the session, so its streams fail and safe calls are retried elsewhere: a host that was
 * cut off or froze is detected in about two seconds instead of at the caller's overall
 * timeout. Two seconds, not less: a callee proxy's event loop stalled by a busy shared CPU or a
 * long GC is silent too, and failing its session would turn a slow call into a failed one
 * (this side's own stalls do not count: the wait is counted in checks, not clock time).
 */
export const DEFAULT_PING_TIMEOUT_MS = 2_000;
/** Highest stream id a client uses before it needs a new session. */
export const MAX_STREAM_ID = 0x7fff_ffff;

/** The connection a session runs over (a verified mTLS connection in the proxy). */
export interface MuxTransport {
  /** Reads into `p`; null at EOF. */
  read(p: Uint8Array): Promise<number | null>;
  /** Writes some of `p`; resolves with how many bytes were taken. */
  write(p: Uint8Array): Promise<number>;
  /** Closes the connection. */
  close(): void;
  /**
   * Optional: hands `p` over without waiting for the write to complete (the transport keeps
   * `p`); returns a promise only when the caller should wait for the transport to drain.
   */
  writeQueued?(p: Uint8Array): Promise<void> | undefined;
  /**
   * Optional: pushes every chunk to `onData` as it arrives, then calls `onEnd` once; the
   * session then never calls `read`. Saves a read call and a promise per chunk.
   */
  pushTo?(onData: (chunk: Uint8Array) => void, onEnd: (err: Error | null) => void): void;
  /** Local address, shown by streams. */
  readonly localAddr: Deno.Addr;
  /** Remote address, shown by streams. */
  readonly remoteAddr: Deno.Addr;
}

/** Counters of one session. */
export interface MuxSessionStats {
  /** Streams open now. */
  streams: number;
  /** Streams opened or accepted so far. */
  opened: number;
  /** Writes to the connection (each carries every frame queued since the last one). */
  flushes: number;
  /** Frames sent. */
  frames: number;
}

/**
 * What a {@linkcode MuxStream} needs of its session: queueing frames, back-pressure, and the
 * session's state and addresses. {@linkcode MuxSession} is the only implementation.
 */
export interface StreamHost {
  /** The peer's verified SPIFFE id. */
  readonly peerIdentity: string | null;
  /** Whether the session has ended. */
  readonly closed: boolean;
  /** Whether the session was retired (no stream is reused on it). */
  readonly retired: boolean;
  /** Whether the peer said it takes no new streams here. */
  readonly peerGoingAway: boolean;
  /** The transport's local address. */
  readonly localAddr: Deno.Addr;
  /** The transport's remote address. */
  readonly remoteAddr: Deno.Addr;
  /** Whether queued bytes are over the cap, so writers should wait for a flush. */
  readonly _congested: boolean;
  /** Resolves once queued bytes are under the cap again (or the session ended). */
  _drained(): Promise<void>;
  /** Queues one frame; the payload is copied. */
  _queue(
    type: FrameTypeValue,
    stream: number,
    p: Uint8Array | null,
    off: number,
    len: number,
  ): void;
  /** Queues a Window frame returning `n` bytes of credit on `stream`. */
  _queueWindow(stream: number, n: number): void;
  /** Forgets a stream closed here. */
  _forget(s: { readonly id: number }): void;
}
