import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { sessionPair } from "../../tests/mesh_hotpath/session_pair.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const enc = new TextEncoder();

Deno.test(
  "beginHead() moves a pipelined request to the front and arms the header deadline",
  opts,
  async () => {
    const p = await sessionPair({ keepAliveIdleMs: 60_000, headerTimeoutMs: 5_000 });
    try {
      const s = p.s;
      // Nothing left over: the idle deadline (60 s in 1 s ticks, plus one).
      s.beginHead();
      assertEquals([s.pos, s.len, s.deadlineTick, s.waitingHead], [0, 0, 61, true]);
      // The next request's first bytes arrived with the last one: the header deadline.
      s.buf.set(enc.encode("xxxxGET /"), 0);
      s.pos = 4;
      s.len = 9;
      s.beginHead();
      assertEquals([s.pos, s.len, s.deadlineTick], [0, 5, 6]);
      assertEquals(new TextDecoder().decode(s.buf.subarray(0, 5)), "GET /");
    } finally {
      p.close();
    }
  },
);

Deno.test(
  "checkDeadline() closes a connection only while it waits past its deadline",
  opts,
  async () => {
    const p = await sessionPair();
    try {
      const s = p.s;
      s.deadlineTick = 3;
      s.checkDeadline(5);
      assert(!s.closed, "not waiting for a head or body: a request in progress is not cut");
      s.waitingBody = true;
      s.checkDeadline(2);
      assert(!s.closed);
      s.checkDeadline(3);
      assert(s.closed);
    } finally {
      p.close();
    }
  },
);

Deno.test(
  "ensureRoom() moves the unread bytes to a new buffer and leaves the old one whole",
  opts,
  async () => {
    const p = await sessionPair({ clientBufferBytes: 16 });
    try {
      const s = p.s;
      const old = s.buf;
      old.set(enc.encode("HEAD-body"), 0);
      s.pos = 5;
      s.len = 9;
      s.ensureRoom(32);
      assert(s.buf !== old && s.buf.length === 32);
      assertEquals([s.pos, s.len], [0, 4]);
      assertEquals(new TextDecoder().decode(s.buf.subarray(0, 4)), "body");
      // The parsed head still points into the old buffer.
      assertEquals(new TextDecoder().decode(old.subarray(0, 5)), "HEAD-");
      s.grow(64);
      assertEquals(s.buf.length, 64);
      s.grow(64);
      assertEquals(s.buf.length, 64, "grow() stops at its bound");
    } finally {
      p.close();
    }
  },
);
