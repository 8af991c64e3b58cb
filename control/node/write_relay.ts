/**
 * Write forwarding over the peer transport: a follower sends the already validated command
 * bytes to the leader in a `FRAME_FORWARD` frame with a request id; the leader proposes them
 * and answers with a `FRAME_FORWARD_RESULT` once the entry is applied (or refused). This replaces
 * a second HTTP request per follower write. The follower keeps a bounded table of in-flight
 * forwards; each ends in a result, a timeout, an abort or a leader change, never in a hang.
 *
 * A forward made for an API caller carries that caller ({@linkcode ForwardedCaller}: the verified
 * SPIFFE id and the operator token id, never a secret), and the leader authorizes the command
 * against it again with {@linkcode forwardRefusal}. The frame is trusted because control nodes
 * reach each other only over mTLS with control identities; a forward without a caller is the
 * forwarding node's own proposal (e.g. its bootstrap token).
 * @module
 */
import type { ApplyResult } from "../registry/mod.ts";
import { BackendError } from "../api/backend.ts";
import {
  authorizeCommand,
  type CommandShape,
  type ForwardedCaller,
  type OperatorTokenRecord,
} from "../auth/mod.ts";

/**
 * A follower's write, forwarded to the leader:
 * `u8 type | u32 id | [0x01 | u16 caller length | caller JSON] | command bytes`. The caller
 * section is optional; command JSON starts with `{`, so its marker byte is unambiguous.
 */
export const FRAME_FORWARD = 3;
/** The leader's answer to a forward: `u8 type | u32 id | JSON outcome`. */
export const FRAME_FORWARD_RESULT = 4;
/** Forwards in flight at once per follower; more are refused as overload (503). */
export const MAX_FORWARDS_IN_FLIGHT = 4096;
/** A forward without an answer after this long fails with 503 (the write may still commit). */
export const FORWARD_TIMEOUT_MS = 8_000;

const _HEADER_BYTES = 5;
/** Marks the optional caller section of a forward request. */
const _CALLER_MARKER = 0x01;
/** Largest caller section: a SPIFFE id (at most 2048 characters) and a token id. */
export const MAX_FORWARD_CALLER_BYTES = 4096;
const _enc = new TextEncoder();
const _dec = new TextDecoder();

/** What the leader answers to a forward. */
export type ForwardOutcome =
  | { ok: true; result: ApplyResult }
  | { ok: false; status: 400 | 401 | 403 | 404 | 409 | 503; code: string; message: string };

function _frame(type: number, id: number, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(_HEADER_BYTES + body.length);
  out[0] = type;
  new DataView(out.buffer).setUint32(1, id);
  out.set(body, _HEADER_BYTES);
  return out;
}

function _id(frame: Uint8Array): number {
  if (frame.length < _HEADER_BYTES) {
    throw new Error(`forward frame of ${frame.length} bytes is shorter than its header`);
  }
  return new DataView(frame.buffer, frame.byteOffset, frame.byteLength).getUint32(1);
}

/** Encodes a forward request frame, with the original API caller when there is one. */
export function encodeForwardRequest(
  id: number,
  command: Uint8Array,
  caller?: ForwardedCaller,
): Uint8Array {
  if (!caller) return _frame(FRAME_FORWARD, id, command);
  const who = _enc.encode(JSON.stringify({ peer: caller.peer, token_id: caller.tokenId }));
  if (who.length > MAX_FORWARD_CALLER_BYTES) {
    throw new RangeError(
      `forward caller of ${who.length} bytes is over ${MAX_FORWARD_CALLER_BYTES}`,
    );
  }
  const body = new Uint8Array(3 + who.length + command.length);
  body[0] = _CALLER_MARKER;
  new DataView(body.buffer).setUint16(1, who.length);
  body.set(who, 3);
  body.set(command, 3 + who.length);
  return _frame(FRAME_FORWARD, id, body);
}

/**
 * Splits a forward request frame into its id, the original caller (null for the forwarding
 * node's own proposal) and the command bytes (still to be validated). Throws on a malformed
 * caller section.
 */
export function decodeForwardRequest(
  frame: Uint8Array,
): { id: number; caller: ForwardedCaller | null; command: Uint8Array } {
  const id = _id(frame);
  const rest = frame.subarray(_HEADER_BYTES);
  if (rest[0] !== _CALLER_MARKER) return { id, caller: null, command: rest };
  if (rest.length < 3) throw new Error("forward frame: truncated caller section");
  const len = new DataView(rest.buffer, rest.byteOffset, rest.byteLength).getUint16(1);
  if (len > MAX_FORWARD_CALLER_BYTES || 3 + len > rest.length) {
    throw new Error(`forward frame: caller section of ${len} bytes overruns the frame`);
  }
  const v = JSON.parse(_dec.decode(rest.subarray(3, 3 + len))) as Record<string, unknown>;
  const peer = v?.peer;
  const tokenId = v?.token_id;
  if (
    (peer !== null && typeof peer !== "string") || (tokenId !== null && typeof tokenId !== "string")
  ) {
    throw new Error("forward frame: malformed caller");
  }
  return { id, caller: { peer, tokenId }, command: rest.subarray(3 + len) };
}

/**
 * The leader's second check of a forwarded write: null when the original caller may propose
 * `cmd`, else the refusal to answer (401/403). A forward without a caller is the forwarding
 * node's own proposal and passes.
 */
export function forwardRefusal(
  cmd: CommandShape,
  caller: ForwardedCaller | null,
  ctx: { tokens: readonly OperatorTokenRecord[]; now: number },
): ForwardOutcome | null {
  if (caller === null) return null;
  const d = authorizeCommand(cmd, caller, ctx);
  if (d.allowed) return null;
  return {
    ok: false,
    status: d.status,
    code: d.status === 401 ? "unauthenticated" : "forbidden",
    message: `the leader refused the forwarded ${cmd.type}: ${d.reason}`,
  };
}

/** Encodes a forward result frame. */
export function encodeForwardResult(id: number, outcome: ForwardOutcome): Uint8Array {
  return _frame(FRAME_FORWARD_RESULT, id, _enc.encode(JSON.stringify(outcome)));
}

const _STATUSES: ReadonlySet<unknown> = new Set([400, 401, 403, 404, 409, 503]);

/** Decodes a forward result frame; throws on anything that is not a well-formed outcome. */
export function decodeForwardResult(frame: Uint8Array): { id: number; outcome: ForwardOutcome } {
  const id = _id(frame);
  const v = JSON.parse(_dec.decode(frame.subarray(_HEADER_BYTES))) as Record<string, unknown>;
  if (v?.ok === true) {
    const r = v.result as Record<string, unknown> | null;
    if (!r || typeof r !== "object" || typeof r.ok !== "boolean" || typeof r.index !== "number") {
      throw new Error("forward result: malformed apply result");
    }
    return { id, outcome: { ok: true, result: r as unknown as ApplyResult } };
  }
  if (
    v?.ok === false && _STATUSES.has(v.status) && typeof v.code === "string" &&
    typeof v.message === "string"
  ) {
    return { id, outcome: v as unknown as ForwardOutcome };
  }
  throw new Error("forward result: malformed outcome");
}

/** Counters of a {@linkcode ForwardTable}, for `/metrics`. */
export interface ForwardStats {
  /** Forwards waiting for the leader's answer. */
  inFlight: number;
  /** Forwards sent to a leader. */
  sent: number;
  /** Forwards the leader answered (committed or refused). */
  answered: number;
  /** Forwards that ended without an answer: timeout, abort, leader change, shutdown. */
  lost: number;
}

interface _InFlight {
  target: string;
  deadline: number;
  resolve: (r: ApplyResult) => void;
  reject: (e: Error) => void;
}

/** Options of {@linkcode ForwardTable}. */
export interface ForwardTableOptions {
  /** Most forwards in flight. @default MAX_FORWARDS_IN_FLIGHT */
  maxInFlight?: number;
  /** Time a forward may wait for its result. @default FORWARD_TIMEOUT_MS */
  timeoutMs?: number;
  /** Clock in milliseconds. @default Date.now */
  now?: () => number;
}

/**
 * The follower's table of forwards waiting for the leader's result. Deadlines are enforced by
 * {@linkcode ForwardTable.expire}, which the driver calls on every tick, so no timer per write.
 */
export class ForwardTable {
  readonly #inFlight = new Map<number, _InFlight>();
  readonly #max: number;
  readonly #timeoutMs: number;
  readonly #now: () => number;
  #seq = 0;
  #sent = 0;
  #answered = 0;
  #lost = 0;

  /** Creates an empty table. */
  constructor(opts: ForwardTableOptions = {}) {
    this.#max = opts.maxInFlight ?? MAX_FORWARDS_IN_FLIGHT;
    this.#timeoutMs = opts.timeoutMs ?? FORWARD_TIMEOUT_MS;
    this.#now = opts.now ?? Date.now;
  }

  /** Forwards waiting for a result. */
  get size(): number {
    return this.#inFlight.size;
  }

  /** Counters since start. */
  stats(): ForwardStats {
    return {
      inFlight: this.#inFlight.size,
      sent: this.#sent,
      answered: this.#answered,
      lost: this.#lost,
    };
  }

  /**
   * Registers a forward to `target`; `send(id)` must queue the request frame and return whether
   * it was queued. Rejects at once (503 `overloaded`) when the table is full and with
   * `notSent` when the frame could not be queued.
   */
  start(
    target: string,
    signal: AbortSignal,
    send: (id: number) => boolean,
    notSent: () => Error,
  ): Promise<ApplyResult> {
    if (this.#inFlight.size >= this.#max) {
      return Promise.reject(
        new BackendError(503, "overloaded", "too many writes forwarded to the leader; retry later"),
      );
    }
    // Ids wrap at 2^32; an id is only reused after 4 billion forwards, long after it settled.
    let id = this.#seq = (this.#seq + 1) >>> 0;
    while (this.#inFlight.has(id)) id = this.#seq = (this.#seq + 1) >>> 0;
    if (!send(id)) return Promise.reject(notSent());
    this.#sent++;
    return new Promise<ApplyResult>((resolve, reject) => {
      const onAbort = () => {
        if (this.#inFlight.delete(id)) {
          this.#lost++;
          reject(
            new BackendError(503, "no_quorum", "the forwarded write was not answered in time"),
          );
        }
      };
      signal.addEventListener("abort", onAbort, { once: true });
      this.#inFlight.set(id, {
        target,
        deadline: this.#now() + this.#timeoutMs,
        resolve: (r) => {
          signal.removeEventListener("abort", onAbort);
          resolve(r);
        },
        reject: (e) => {
          signal.removeEventListener("abort", onAbort);
          reject(e);
        },
      });
    });
  }

  /** Settles forward `id` with the leader's outcome; false when it is unknown (late or foreign). */
  settle(from: string, id: number, outcome: ForwardOutcome): boolean {
    const f = this.#inFlight.get(id);
    if (!f || f.target !== from) return false;
    this.#inFlight.delete(id);
    this.#answered++;
    if (outcome.ok) f.resolve(outcome.result);
    else f.reject(new BackendError(outcome.status, outcome.code, outcome.message));
    return true;
  }

  /** Fails every forward past its deadline with 503 `leader_unreachable`. */
  expire(): void {
    const now = this.#now();
    for (const [id, f] of this.#inFlight) {
      if (f.deadline > now) continue;
      this.#inFlight.delete(id);
      this.#lost++;
      f.reject(
        new BackendError(
          503,
          "leader_unreachable",
          `the leader ${f.target} did not answer a forwarded write within ${this.#timeoutMs} ms; ` +
            "it may or may not be applied",
        ),
      );
    }
  }

  /** Fails every forward whose target is not `leader` (the leader changed or is unknown). */
  failExcept(leader: string | null, why: string): void {
    for (const [id, f] of this.#inFlight) {
      if (f.target === leader) continue;
      this.#inFlight.delete(id);
      this.#lost++;
      f.reject(new BackendError(503, "leader_unreachable", why));
    }
  }

  /** Fails every forward with `e`. */
  failAll(e: Error): void {
    const all = [...this.#inFlight.values()];
    this.#inFlight.clear();
    this.#lost += all.length;
    for (const f of all) f.reject(e);
  }
}
