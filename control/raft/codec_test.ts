import { nodeId } from "../../common/ids.ts";
import {
  decodeConfChange,
  decodeEntry,
  decodeHardState,
  decodeMessage,
  decodeSnapshot,
  encodeConfChange,
  encodeEntry,
  encodeHardState,
  encodeMessage,
  encodeSnapshot,
  RaftCodecError,
} from "./codec.ts";
import type { Message } from "./types.ts";

const a = nodeId("cp-1");
const b = nodeId("cp-2");
const data = new TextEncoder().encode("héllo");

/** One message of every type, with non-trivial field values. */
const SAMPLES: Message[] = [
  {
    type: "app",
    from: a,
    to: b,
    term: 7,
    logTerm: 6,
    index: 2 ** 40,
    commit: 99,
    entries: [
      { term: 7, index: 2 ** 40 + 1, type: "normal", data },
      { term: 7, index: 2 ** 40 + 2, type: "conf", data: new Uint8Array() },
    ],
  },
  { type: "app_resp", from: b, to: a, term: 7, index: 12, reject: true, rejectHint: 9, logTerm: 5 },
  { type: "vote", from: a, to: b, term: 8, logTerm: 7, index: 100, transfer: true },
  { type: "pre_vote", from: a, to: b, term: 8, logTerm: 7, index: 100, transfer: false },
  { type: "vote_resp", from: b, to: a, term: 8, reject: false },
  { type: "pre_vote_resp", from: b, to: a, term: 8, reject: true },
  { type: "heartbeat", from: a, to: b, term: 8, commit: 5, ctx: "read-1" },
  { type: "heartbeat_resp", from: b, to: a, term: 8, ctx: "" },
  {
    type: "snap",
    from: a,
    to: b,
    term: 9,
    snapshot: {
      meta: { index: 50, term: 8, conf: { voters: [a, b], learners: [nodeId("cp-3")] } },
      data,
    },
  },
  { type: "timeout_now", from: a, to: b, term: 9 },
  { type: "transfer_leader", from: b, to: a, term: 9, target: b },
  { type: "read_index", from: b, to: a, term: 9, ctx: "ctx-Ω" },
  { type: "read_index_resp", from: a, to: b, term: 9, ctx: "ctx-Ω", index: 42, reject: false },
];

function assertEq(got: unknown, want: unknown, what: string): void {
  const g = JSON.stringify(got, (_k, v) => v instanceof Uint8Array ? [...v] : v);
  const w = JSON.stringify(want, (_k, v) => v instanceof Uint8Array ? [...v] : v);
  if (g !== w) throw new Error(`${what}: got ${g}, want ${w}`);
}

function assertCodecError(f: () => unknown, what: string): void {
  try {
    f();
  } catch (e) {
    if (e instanceof RaftCodecError) return;
    throw new Error(`${what}: expected RaftCodecError, got ${e}`);
  }
  throw new Error(`${what}: expected RaftCodecError, decode succeeded`);
}

Deno.test("encodeMessage()/decodeMessage() round-trip every message type", () => {
  for (const m of SAMPLES) assertEq(decodeMessage(encodeMessage(m)), m, m.type);
});

Deno.test("WAL codecs round-trip entries, hard state, snapshots and conf changes", () => {
  const e = { term: 3, index: 17, type: "conf" as const, data };
  assertEq(decodeEntry(encodeEntry(e)), e, "entry");
  for (const hs of [{ term: 4, vote: a, commit: 10 }, { term: 0, vote: null, commit: 0 }]) {
    assertEq(decodeHardState(encodeHardState(hs)), hs, "hard state");
  }
  const s = (SAMPLES[8] as Extract<Message, { type: "snap" }>).snapshot;
  assertEq(decodeSnapshot(encodeSnapshot(s)), s, "snapshot");
  for (const op of ["add_learner", "promote", "remove"] as const) {
    assertEq(decodeConfChange(encodeConfChange({ op, node: b })), { op, node: b }, op);
  }
});

Deno.test("decodeMessage() rejects every truncation of every message", () => {
  for (const m of SAMPLES) {
    const bytes = encodeMessage(m);
    for (let n = 0; n < bytes.length; n++) {
      assertCodecError(() => decodeMessage(bytes.subarray(0, n)), `${m.type} cut at ${n}`);
    }
  }
});

Deno.test("decodeMessage() rejects bad version, bad tags, trailing bytes and bad booleans", () => {
  const hb = encodeMessage(SAMPLES[6]!);
  const badVersion = hb.slice();
  badVersion[0] = 9;
  assertCodecError(() => decodeMessage(badVersion), "version");
  const badTag = hb.slice();
  badTag[1] = 200;
  assertCodecError(() => decodeMessage(badTag), "message tag");
  const trailing = new Uint8Array([...hb, 0]);
  assertCodecError(() => decodeMessage(trailing), "trailing byte");
  const vr = encodeMessage(SAMPLES[4]!);
  const badBool = vr.slice();
  badBool[badBool.length - 1] = 2;
  assertCodecError(() => decodeMessage(badBool), "boolean");
  const app = encodeMessage(SAMPLES[0]!);
  // The entry-type byte of the last entry sits right before its (empty) data length.
  const badEntryType = app.slice();
  badEntryType[badEntryType.length - 2] = 7;
  assertCodecError(() => decodeMessage(badEntryType), "entry type");
});

Deno.test("decodeMessage() rejects lengths and counts that run past the end", () => {
  // version, tag=heartbeat_resp(7), from="a", to="b", term=1, ctx length 100 with no bytes.
  assertCodecError(
    () => decodeMessage(new Uint8Array([1, 7, 1, 97, 1, 98, 1, 100])),
    "ctx length past end",
  );
  // app with an entry count far larger than the input could hold.
  assertCodecError(
    () => decodeMessage(new Uint8Array([1, 0, 1, 97, 1, 98, 1, 0, 0, 0, 0xff, 0xff, 0x03])),
    "entry count",
  );
  // A node id longer than the limit.
  assertCodecError(
    () => decodeMessage(new Uint8Array([1, 7, 0x80, 0x02, ...new Uint8Array(256).fill(97)])),
    "node id too long",
  );
  // Empty node id, invalid UTF-8, overlong varint, duplicate conf member.
  assertCodecError(() => decodeMessage(new Uint8Array([1, 7, 0, 1, 98, 1, 0])), "empty id");
  assertCodecError(() => decodeMessage(new Uint8Array([1, 7, 1, 0xff, 1, 98, 1, 0])), "utf-8");
  assertCodecError(
    () =>
      decodeMessage(
        new Uint8Array([
          1,
          7,
          1,
          97,
          1,
          98,
          0xff,
          0xff,
          0xff,
          0xff,
          0xff,
          0xff,
          0xff,
          0xff,
          0x01,
          0,
        ]),
      ),
    "varint too long",
  );
  assertCodecError(
    () => decodeMessage(new Uint8Array([1, 7, 1, 97, 1, 98, 0x81, 0x00, 0])),
    "non-minimal varint",
  );
  const dup = encodeSnapshot({
    meta: { index: 1, term: 1, conf: { voters: [a, a], learners: [] } },
    data,
  });
  assertCodecError(() => decodeSnapshot(dup), "duplicate member");
});

Deno.test("decodeMessage() on random garbage and mutated messages throws only RaftCodecError", () => {
  // A fixed-seed xorshift keeps the fuzz reproducible.
  let x = 0x2545f491;
  const rnd = (): number => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 4294967296;
  };
  let decoded = 0;
  for (let i = 0; i < 4000; i++) {
    let bytes: Uint8Array;
    if (i % 2 === 0) {
      bytes = new Uint8Array(Math.floor(rnd() * 64));
      for (let j = 0; j < bytes.length; j++) bytes[j] = Math.floor(rnd() * 256);
      if (bytes.length > 0 && rnd() < 0.8) bytes[0] = 1;
    } else {
      bytes = encodeMessage(SAMPLES[Math.floor(rnd() * SAMPLES.length)]!).slice();
      const flips = 1 + Math.floor(rnd() * 3);
      for (let f = 0; f < flips; f++) {
        bytes[Math.floor(rnd() * bytes.length)] = Math.floor(rnd() * 256);
      }
    }
    try {
      const m = decodeMessage(bytes);
      decoded++;
      // Whatever decodes must re-encode to exactly the same bytes: no half-valid values.
      assertEq([...encodeMessage(m)], [...bytes], "re-encode of a decoded fuzz input");
    } catch (e) {
      if (!(e instanceof RaftCodecError)) throw new Error(`fuzz input ${i} threw ${e}`);
    }
  }
  if (decoded === 0) {
    throw new Error("fuzz never produced a decodable message; mutations too coarse");
  }
});
