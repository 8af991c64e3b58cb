/**
 * Compact binary encoding of Raft messages, entries, hard state and conf changes.
 *
 * Layout: a version byte, then a type tag, then fields as unsigned LEB128 varints,
 * length-prefixed UTF-8 strings and length-prefixed bytes. Decoding validates every
 * tag, length and number and throws {@linkcode RaftCodecError}; it never returns a
 * half-valid value and never reads past the end of its input.
 * @module
 */
import type { NodeId } from "../../common/ids.ts";
import type {
  ConfChange,
  ConfState,
  Entry,
  HardState,
  Message,
  MessageType,
  Snapshot,
} from "./types.ts";

/** Malformed wire or WAL bytes. */
export class RaftCodecError extends Error {
  /** Creates the error naming what was being decoded, why it failed and where. */
  constructor(what: string, why: string, offset: number) {
    super(`raft codec: cannot decode ${what}: ${why} at byte ${offset}`);
    this.name = "RaftCodecError";
  }
}

/** Wire format version; bumped on any incompatible change. */
export const CODEC_VERSION = 1;
/** Longest node id accepted, in bytes. */
export const NODE_ID_BYTES_MAX = 255;
/** Longest read-index context accepted, in bytes. */
export const CTX_BYTES_MAX = 1024;
/** Most entries one decoded message may carry. */
export const ENTRIES_PER_MSG_MAX = 65_536;
/** Most members one decoded ConfState may list. */
export const CONF_MEMBERS_MAX = 1024;

/** Every message type, in wire-tag order (the tag is the index). */
export const MESSAGE_TYPES: readonly MessageType[] = [
  "app",
  "app_resp",
  "vote",
  "pre_vote",
  "vote_resp",
  "pre_vote_resp",
  "heartbeat",
  "heartbeat_resp",
  "snap",
  "timeout_now",
  "transfer_leader",
  "read_index",
  "read_index_resp",
];
const CONF_OPS: readonly ConfChange["op"][] = ["add_learner", "promote", "remove"];
const ENTRY_TYPES: readonly Entry["type"][] = ["normal", "conf"];

const _enc = new TextEncoder();
const _dec = new TextDecoder("utf-8", { fatal: true });

class _Writer {
  #buf = new Uint8Array(64);
  #len = 0;

  #grow(n: number): void {
    if (this.#len + n <= this.#buf.length) return;
    let cap = this.#buf.length * 2;
    while (cap < this.#len + n) cap *= 2;
    const b = new Uint8Array(cap);
    b.set(this.#buf.subarray(0, this.#len));
    this.#buf = b;
  }

  byte(b: number): void {
    this.#grow(1);
    this.#buf[this.#len++] = b;
  }

  uint(n: number): void {
    if (!Number.isSafeInteger(n) || n < 0) {
      throw new RangeError(`raft codec: cannot encode ${n}: not a non-negative safe integer`);
    }
    while (n >= 0x80) {
      this.byte((n % 0x80) | 0x80);
      n = Math.floor(n / 0x80);
    }
    this.byte(n);
  }

  bool(b: boolean): void {
    this.byte(b ? 1 : 0);
  }

  bytes(b: Uint8Array): void {
    this.uint(b.length);
    this.#grow(b.length);
    this.#buf.set(b, this.#len);
    this.#len += b.length;
  }

  str(s: string): void {
    this.bytes(_enc.encode(s));
  }

  finish(): Uint8Array {
    return this.#buf.slice(0, this.#len);
  }
}

class _Reader {
  #pos = 0;
  constructor(readonly buf: Uint8Array, readonly what: string) {}

  fail(why: string): never {
    throw new RaftCodecError(this.what, why, this.#pos);
  }

  byte(): number {
    if (this.#pos >= this.buf.length) this.fail("unexpected end of input");
    return this.buf[this.#pos++]!;
  }

  uint(): number {
    let n = 0;
    let mul = 1;
    for (let i = 0; i < 8; i++) {
      const b = this.byte();
      n += (b & 0x7f) * mul;
      if (!Number.isSafeInteger(n)) this.fail("integer exceeds 2^53-1");
      if ((b & 0x80) === 0) {
        if (i > 0 && b === 0) this.fail("non-minimal varint");
        return n;
      }
      mul *= 0x80;
    }
    return this.fail("varint longer than 8 bytes");
  }

  bool(): boolean {
    const b = this.byte();
    if (b > 1) this.fail(`bad boolean ${b}`);
    return b === 1;
  }

  len(max: number, what: string): number {
    const n = this.uint();
    if (n > max) this.fail(`${what} length ${n} exceeds ${max}`);
    if (n > this.buf.length - this.#pos) {
      this.fail(`${what} length ${n} runs past the end (${this.buf.length - this.#pos} left)`);
    }
    return n;
  }

  bytes(): Uint8Array {
    const n = this.len(Number.MAX_SAFE_INTEGER, "bytes");
    const out = this.buf.slice(this.#pos, this.#pos + n);
    this.#pos += n;
    return out;
  }

  str(max: number, what: string): string {
    const n = this.len(max, what);
    let s: string;
    try {
      s = _dec.decode(this.buf.subarray(this.#pos, this.#pos + n));
    } catch {
      this.fail(`${what} is not valid UTF-8`);
    }
    this.#pos += n;
    return s;
  }

  node(): NodeId {
    const s = this.str(NODE_ID_BYTES_MAX, "node id");
    if (s.length === 0) this.fail("empty node id");
    return s as NodeId;
  }

  count(max: number, minBytesEach: number, what: string): number {
    const n = this.uint();
    if (n > max) this.fail(`${what} count ${n} exceeds ${max}`);
    if (n * minBytesEach > this.buf.length - this.#pos) {
      this.fail(`${what} count ${n} cannot fit in the ${this.buf.length - this.#pos} bytes left`);
    }
    return n;
  }

  tag<T>(table: readonly T[], what: string): T {
    const b = this.byte();
    const t = table[b];
    if (t === undefined) this.fail(`unknown ${what} tag ${b}`);
    return t;
  }

  version(): void {
    const v = this.byte();
    if (v !== CODEC_VERSION) this.fail(`unsupported version ${v} (expected ${CODEC_VERSION})`);
  }

  end(): void {
    if (this.#pos !== this.buf.length) {
      this.fail(`${this.buf.length - this.#pos} trailing bytes`);
    }
  }
}

function _writeEntry(w: _Writer, e: Entry): void {
  w.uint(e.term);
  w.uint(e.index);
  w.byte(ENTRY_TYPES.indexOf(e.type));
  w.bytes(e.data);
}

function _readEntry(r: _Reader): Entry {
  const term = r.uint();
  const index = r.uint();
  const type = r.tag(ENTRY_TYPES, "entry type");
  const data = r.bytes();
  return { term, index, type, data };
}

function _writeConf(w: _Writer, c: ConfState): void {
  w.uint(c.voters.length);
  for (const v of c.voters) w.str(v);
  w.uint(c.learners.length);
  for (const l of c.learners) w.str(l);
}

function _readConf(r: _Reader): ConfState {
  const voters: NodeId[] = [];
  const nv = r.count(CONF_MEMBERS_MAX, 2, "voter");
  for (let i = 0; i < nv; i++) voters.push(r.node());
  const learners: NodeId[] = [];
  const nl = r.count(CONF_MEMBERS_MAX, 2, "learner");
  for (let i = 0; i < nl; i++) learners.push(r.node());
  const all = new Set([...voters, ...learners]);
  if (all.size !== voters.length + learners.length) r.fail("duplicate member in conf state");
  return { voters, learners };
}

function _writeSnapshot(w: _Writer, s: Snapshot): void {
  w.uint(s.meta.index);
  w.uint(s.meta.term);
  _writeConf(w, s.meta.conf);
  w.bytes(s.data);
}

function _readSnapshot(r: _Reader): Snapshot {
  const index = r.uint();
  const term = r.uint();
  const conf = _readConf(r);
  const data = r.bytes();
  return { meta: { index, term, conf }, data };
}

/** Encodes a message for the wire. */
export function encodeMessage(m: Message): Uint8Array {
  const w = new _Writer();
  w.byte(CODEC_VERSION);
  w.byte(MESSAGE_TYPES.indexOf(m.type));
  w.str(m.from);
  w.str(m.to);
  w.uint(m.term);
  switch (m.type) {
    case "app":
      w.uint(m.logTerm);
      w.uint(m.index);
      w.uint(m.commit);
      w.uint(m.entries.length);
      for (const e of m.entries) _writeEntry(w, e);
      break;
    case "app_resp":
      w.uint(m.index);
      w.bool(m.reject);
      w.uint(m.rejectHint);
      w.uint(m.logTerm);
      break;
    case "vote":
    case "pre_vote":
      w.uint(m.logTerm);
      w.uint(m.index);
      w.bool(m.transfer);
      break;
    case "vote_resp":
    case "pre_vote_resp":
      w.bool(m.reject);
      break;
    case "heartbeat":
      w.uint(m.commit);
      w.str(m.ctx);
      break;
    case "heartbeat_resp":
    case "read_index":
      w.str(m.ctx);
      break;
    case "snap":
      _writeSnapshot(w, m.snapshot);
      break;
    case "timeout_now":
      break;
    case "transfer_leader":
      w.str(m.target);
      break;
    case "read_index_resp":
      w.str(m.ctx);
      w.uint(m.index);
      w.bool(m.reject);
      break;
  }
  return w.finish();
}

/** Decodes and validates a message; throws {@linkcode RaftCodecError} on malformed bytes. */
export function decodeMessage(bytes: Uint8Array): Message {
  const r = new _Reader(bytes, "message");
  r.version();
  const type = r.tag(MESSAGE_TYPES, "message type");
  const from = r.node();
  const to = r.node();
  const term = r.uint();
  let m: Message;
  switch (type) {
    case "app": {
      const logTerm = r.uint();
      const index = r.uint();
      const commit = r.uint();
      const n = r.count(ENTRIES_PER_MSG_MAX, 4, "entry");
      const entries: Entry[] = [];
      for (let i = 0; i < n; i++) entries.push(_readEntry(r));
      m = { type, from, to, term, logTerm, index, commit, entries };
      break;
    }
    case "app_resp": {
      const index = r.uint();
      const reject = r.bool();
      const rejectHint = r.uint();
      const logTerm = r.uint();
      m = { type, from, to, term, index, reject, rejectHint, logTerm };
      break;
    }
    case "vote":
    case "pre_vote": {
      const logTerm = r.uint();
      const index = r.uint();
      const transfer = r.bool();
      m = { type, from, to, term, logTerm, index, transfer };
      break;
    }
    case "vote_resp":
    case "pre_vote_resp":
      m = { type, from, to, term, reject: r.bool() };
      break;
    case "heartbeat": {
      const commit = r.uint();
      m = { type, from, to, term, commit, ctx: r.str(CTX_BYTES_MAX, "ctx") };
      break;
    }
    case "heartbeat_resp":
    case "read_index":
      m = { type, from, to, term, ctx: r.str(CTX_BYTES_MAX, "ctx") };
      break;
    case "snap":
      m = { type, from, to, term, snapshot: _readSnapshot(r) };
      break;
    case "timeout_now":
      m = { type, from, to, term };
      break;
    case "transfer_leader":
      m = { type, from, to, term, target: r.node() };
      break;
    case "read_index_resp": {
      const ctx = r.str(CTX_BYTES_MAX, "ctx");
      const index = r.uint();
      m = { type, from, to, term, ctx, index, reject: r.bool() };
      break;
    }
  }
  r.end();
  return m;
}

/** Encodes one log entry for the WAL. */
export function encodeEntry(e: Entry): Uint8Array {
  const w = new _Writer();
  w.byte(CODEC_VERSION);
  _writeEntry(w, e);
  return w.finish();
}

/** Decodes one WAL entry; throws {@linkcode RaftCodecError} on malformed bytes. */
export function decodeEntry(bytes: Uint8Array): Entry {
  const r = new _Reader(bytes, "entry");
  r.version();
  const e = _readEntry(r);
  r.end();
  return e;
}

/** Encodes the hard state for the WAL. */
export function encodeHardState(hs: HardState): Uint8Array {
  const w = new _Writer();
  w.byte(CODEC_VERSION);
  w.uint(hs.term);
  w.bool(hs.vote !== null);
  if (hs.vote !== null) w.str(hs.vote);
  w.uint(hs.commit);
  return w.finish();
}

/** Decodes a WAL hard state; throws {@linkcode RaftCodecError} on malformed bytes. */
export function decodeHardState(bytes: Uint8Array): HardState {
  const r = new _Reader(bytes, "hard state");
  r.version();
  const term = r.uint();
  const vote = r.bool() ? r.node() : null;
  const commit = r.uint();
  r.end();
  return { term, vote, commit };
}

/** Encodes a snapshot (metadata and data) for the WAL or a snapshot file. */
export function encodeSnapshot(s: Snapshot): Uint8Array {
  const w = new _Writer();
  w.byte(CODEC_VERSION);
  _writeSnapshot(w, s);
  return w.finish();
}

/** Decodes a snapshot; throws {@linkcode RaftCodecError} on malformed bytes. */
export function decodeSnapshot(bytes: Uint8Array): Snapshot {
  const r = new _Reader(bytes, "snapshot");
  r.version();
  const s = _readSnapshot(r);
  r.end();
  return s;
}

/** Encodes a membership change as the data of a `conf` entry. */
export function encodeConfChange(cc: ConfChange): Uint8Array {
  const w = new _Writer();
  w.byte(CODEC_VERSION);
  w.byte(CONF_OPS.indexOf(cc.op));
  w.str(cc.node);
  return w.finish();
}

/** Decodes the data of a `conf` entry; throws {@linkcode RaftCodecError} on malformed bytes. */
export function decodeConfChange(bytes: Uint8Array): ConfChange {
  const r = new _Reader(bytes, "conf change");
  r.version();
  const op = r.tag(CONF_OPS, "conf change op");
  const node = r.node();
  r.end();
  return { op, node };
}
