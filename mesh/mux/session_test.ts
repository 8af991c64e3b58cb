import { assert, assertEquals, assertRejects } from "../../tests/assert.ts";
import { FRAME_HEADER_BYTES, FrameType, type FrameTypeValue, writeFrameHeader } from "./frame.ts";
import { MuxSession, type MuxStream, STREAM_WINDOW_BYTES } from "./session.ts";
import { MemEnd, memPipe } from "../../tests/mem_pipe.ts";

/** A client and a server session over one in-memory pipe; accepted streams are queued. */
function pair(maxStreams?: number, goAwayGraceMs = 0) {
  const [ct, st] = memPipe();
  const accepted: MuxStream[] = [];
  const waiters: (() => void)[] = [];
  const client = new MuxSession(ct, { role: "client", peerIdentity: "spiffe://td/svc/server" });
  const server = new MuxSession(st, {
    role: "server",
    peerIdentity: "spiffe://td/svc/client",
    maxStreams,
    goAwayGraceMs,
    onStream: (s) => {
      accepted.push(s);
      for (const w of waiters.splice(0)) w();
    },
  });
  const accept = async (): Promise<MuxStream> => {
    while (accepted.length === 0) await new Promise<void>((r) => waiters.push(r));
    return accepted.shift()!;
  };
  return { client, server, ct, st, accept };
}

async function readAll(s: MuxStream): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  const buf = new Uint8Array(7000); // odd size: reads straddle frames
  while (true) {
    const n = await s.read(buf);
    if (n === null) break;
    parts.push(buf.slice(0, n));
  }
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

function pattern(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

Deno.test("streams carry bytes both ways, half-close, and show the peer identity", async () => {
  const { client, accept } = pair();
  const c = client.open();
  await c.write(new TextEncoder().encode("hello"));
  await c.closeWrite();
  const s = await accept();
  assertEquals(s.peerIdentity, "spiffe://td/svc/client");
  assertEquals(c.peerIdentity, "spiffe://td/svc/server");
  assertEquals(new TextDecoder().decode(await readAll(s)), "hello");
  // Half-closed one way only: the server still writes back.
  await s.write(new TextEncoder().encode("world"));
  await s.closeWrite();
  assertEquals(new TextDecoder().decode(await readAll(c)), "world");
  await assertRejects(() => c.write(new Uint8Array(1)), Deno.errors.BrokenPipe);
  c.close();
  s.close();
  assertEquals(client.streamCount, 0);
  client.close();
});

Deno.test("many streams interleave large bodies beyond the window without mixing bytes", async () => {
  const { client, accept } = pair();
  const N = 8;
  const size = STREAM_WINDOW_BYTES * 3 + 12345; // needs several rounds of credit
  const streams = Array.from({ length: N }, () => client.open());
  const sends = streams.map(async (c, i) => {
    await c.write(pattern(size, i));
    await c.closeWrite();
  });
  const got = await Promise.all(
    Array.from({ length: N }, async () => {
      const s = await accept();
      // A slow reader: credit only comes back as it reads.
      await new Promise((r) => setTimeout(r, 5));
      return [s.id, await readAll(s)] as const;
    }),
  );
  await Promise.all(sends);
  for (const [id, bytes] of got) assertEquals(bytes, pattern(size, id - 1));
  client.close();
});

Deno.test("frames queued by many streams in one turn leave in one write", async () => {
  const { client, ct, accept } = pair();
  const streams = Array.from({ length: 10 }, () => client.open());
  const before = ct.writes;
  for (const s of streams) void s.write(new TextEncoder().encode("GET / HTTP/1.1\r\n\r\n"));
  await new Promise((r) => setTimeout(r, 0));
  assertEquals(ct.writes - before, 1);
  assertEquals(client.stats().flushes, 1);
  for (let i = 0; i < 10; i++) await accept();
  client.close();
});

Deno.test("closing a stream early resets it: the peer's reads fail and writes break", async () => {
  const { client, accept } = pair();
  const c = client.open();
  await c.write(new Uint8Array([1, 2, 3]));
  const s = await accept();
  c.close();
  // Bytes sent before the reset are still delivered, then the reset shows.
  const buf = new Uint8Array(10);
  assertEquals(await s.read(buf), 3);
  await assertRejects(() => s.read(buf), Deno.errors.ConnectionReset);
  await assertRejects(() => s.write(new Uint8Array(1)), Deno.errors.BrokenPipe);
  await assertRejects(() => c.read(buf), Deno.errors.BadResource);
  s.close();
  client.close();
});

Deno.test("a closed connection fails every stream on both sides", async () => {
  const { client, server, ct, accept } = pair();
  const c = client.open();
  await c.write(new Uint8Array([9]));
  const s = await accept();
  const pending = c.read(new Uint8Array(4));
  ct.close();
  await assertRejects(() => pending, Deno.errors.ConnectionReset);
  assertEquals(await s.read(new Uint8Array(4)), 1); // what arrived before
  await assertRejects(() => s.read(new Uint8Array(4)), Deno.errors.ConnectionReset);
  assert(client.closed);
  assert(server.closed);
  assert(!client.usable);
});

Deno.test("a peer that sends garbage or overruns a window loses its session", async () => {
  for (const attack of ["garbage", "overrun", "unknown stream"] as const) {
    const [evil, st] = memPipe();
    const server = new MuxSession(st, { role: "server", peerIdentity: null, onStream: () => {} });
    const open = new Uint8Array(FRAME_HEADER_BYTES);
    writeFrameHeader(open, 0, FrameType.Open, 1, 0);
    if (attack === "garbage") {
      await evil.write(new TextEncoder().encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    } else if (attack === "overrun") {
      await evil.write(open);
      const frame = new Uint8Array(FRAME_HEADER_BYTES + 16 * 1024);
      writeFrameHeader(frame, 0, FrameType.Data, 1, 16 * 1024);
      for (let i = 0; i <= STREAM_WINDOW_BYTES / (16 * 1024); i++) await evil.write(frame);
    } else {
      const data = new Uint8Array(FRAME_HEADER_BYTES + 1);
      writeFrameHeader(data, 0, FrameType.Data, 7, 1);
      await evil.write(data);
    }
    for (let i = 0; i < 20 && !server.closed; i++) await new Promise((r) => setTimeout(r, 1));
    assert(server.closed, `${attack}: session should be closed`);
    assert(st.closed, `${attack}: connection should be closed`);
  }
});

Deno.test("streams beyond the session's cap are refused, and say so", async () => {
  const { client, accept } = pair(2);
  const a = client.open();
  const b = client.open();
  const c = client.open();
  await accept();
  await accept();
  await assertRejects(() => c.read(new Uint8Array(1)), Deno.errors.ConnectionRefused);
  await assertRejects(() => c.write(new Uint8Array(1)), Deno.errors.ConnectionRefused);
  a.close();
  b.close();
  client.close();
});

Deno.test("after goAway the client takes no new streams and the session ends when idle", async () => {
  const { client, server, accept } = pair();
  const c = client.open();
  await c.write(new Uint8Array([1]));
  const s = await accept();
  server.goAway();
  for (let i = 0; i < 20 && client.usable; i++) await new Promise((r) => setTimeout(r, 1));
  assert(!client.usable);
  // The open stream still works until it is done.
  await s.write(new Uint8Array([2]));
  assertEquals(await c.read(new Uint8Array(4)), 1);
  s.close();
  c.close();
  for (let i = 0; i < 50 && !server.closed; i++) await new Promise((r) => setTimeout(r, 1));
  assert(server.closed);
});

Deno.test("a stream the server refuses unread fails with ConnectionRefused on the caller", async () => {
  const { client, server, accept } = pair(undefined, 50);
  const c = client.open();
  await c.write(new TextEncoder().encode("POST / HTTP/1.1\r\n\r\n"));
  const s = await accept();
  s.refuse();
  await assertRejects(() => c.read(new Uint8Array(8)), Deno.errors.ConnectionRefused);
  assertEquals(server.streamCount, 0);
  // Opened before the server's GoAway reached it: refused too, not reset.
  server.goAway();
  const late = client.open();
  await late.write(new Uint8Array([1]));
  await assertRejects(() => late.read(new Uint8Array(8)), Deno.errors.ConnectionRefused);
  assert(!client.usable);
  c.close();
  late.close();
  client.close();
});

Deno.test("a rebalancing goAway still serves the streams sent before it reached the client", async () => {
  const { client, server, accept } = pair(undefined, 60);
  // The server says "go elsewhere" before the client's first stream reaches it.
  server.goAway("rebalance");
  const early = client.open();
  await early.write(new TextEncoder().encode("GET / HTTP/1.1\r\n\r\n"));
  const s = await accept();
  const req = new Uint8Array(64);
  const n = await s.read(req);
  assertEquals(new TextDecoder().decode(req.subarray(0, n ?? 0)), "GET / HTTP/1.1\r\n\r\n");
  await s.write(new Uint8Array([7]));
  const buf = new Uint8Array(4);
  assertEquals(await early.read(buf), 1, "the early stream was served, not refused");
  assertEquals(buf[0], 7);
  assert(client.peerGoingAway && !client.usable, "the client dials elsewhere for new streams");
  assertEquals(early.reusable, false, "the pool must not keep the stream for another request");
  // A draining goAway, by contrast, refuses such a stream (see the test below).
  s.close();
  early.close();
  for (let i = 0; i < 200 && !server.closed; i++) await new Promise((r) => setTimeout(r, 1));
  assert(server.closed, "the server ends the session once the grace time is over and idle");
  client.close();
});

Deno.test("a stream of a healthy session is reusable; one of a closed session is not", async () => {
  const { client, accept } = pair();
  const c = client.open();
  await c.write(new Uint8Array([1]));
  await accept();
  assertEquals(c.reusable, true);
  client.close();
  assertEquals(c.reusable, false);
});

Deno.test("a client that sends Refused breaks the protocol", async () => {
  const [evil, st] = memPipe();
  const server = new MuxSession(st, { role: "server", peerIdentity: null, onStream: () => {} });
  const f = new Uint8Array(2 * FRAME_HEADER_BYTES);
  writeFrameHeader(f, 0, FrameType.Open, 1, 0);
  writeFrameHeader(f, FRAME_HEADER_BYTES, FrameType.Refused, 1, 0);
  await evil.write(f);
  for (let i = 0; i < 20 && !server.closed; i++) await new Promise((r) => setTimeout(r, 1));
  assert(server.closed);
});

/** A MemEnd that pushes what arrives in pieces of 1..`maxPiece` bytes (push mode). */
class PushEnd extends MemEnd {
  #onData: ((c: Uint8Array) => void) | null = null;
  #onEnd: ((e: Error | null) => void) | null = null;
  #seed = 7;
  constructor(readonly maxPiece: number) {
    super();
  }

  pushTo(onData: (c: Uint8Array) => void, onEnd: (e: Error | null) => void): void {
    this.#onData = onData;
    this.#onEnd = onEnd;
  }

  override deliver(c: Uint8Array): void {
    let off = 0;
    while (off < c.length) {
      this.#seed = (this.#seed * 1103515245 + 12345) & 0x7fffffff;
      const k = Math.min(c.length - off, 1 + (this.#seed % this.maxPiece));
      this.#onData?.(c.slice(off, off + k));
      off += k;
    }
  }

  override close(): void {
    super.close();
    this.#onEnd?.(null);
    (this.peer as PushEnd).peerClosed();
  }

  peerClosed(): void {
    this.#onEnd?.(null);
  }
}

Deno.test("push mode reassembles frames from chunks of any size, down to single bytes", async () => {
  for (const maxPiece of [1, 7, 20_000, 200_000]) {
    const ct = new PushEnd(maxPiece);
    const st = new PushEnd(maxPiece);
    ct.peer = st;
    st.peer = ct;
    const accepted: MuxStream[] = [];
    const client = new MuxSession(ct, { role: "client", peerIdentity: null });
    const server = new MuxSession(st, {
      role: "server",
      peerIdentity: null,
      onStream: (s) => accepted.push(s),
    });
    const sizes = [0, 1, 9, 16 * 1024 + 3, 70_000];
    const streams = sizes.map(() => client.open());
    await Promise.all(streams.map(async (c, i) => {
      await c.write(pattern(sizes[i]!, i));
      await c.closeWrite();
    }));
    for (let k = 0; k < 50 && accepted.length < sizes.length; k++) {
      await new Promise((r) => setTimeout(r, 1));
    }
    assertEquals(accepted.length, sizes.length, `pieces up to ${maxPiece}`);
    for (const s of accepted) assertEquals(await readAll(s), pattern(sizes[s.id - 1]!, s.id - 1));
    assert(!server.closed);
    ct.close();
    assert(server.closed, "the end of the pushed stream ends the session");
    client.close();
  }
});

Deno.test("an empty data frame wakes no reader with zero bytes", async () => {
  const [evil, st] = memPipe();
  const accepted: MuxStream[] = [];
  const server = new MuxSession(st, {
    role: "server",
    peerIdentity: null,
    onStream: (s) => accepted.push(s),
  });
  const open = new Uint8Array(FRAME_HEADER_BYTES);
  writeFrameHeader(open, 0, FrameType.Open, 1, 0);
  await evil.write(open);
  for (let i = 0; i < 20 && accepted.length === 0; i++) await new Promise((r) => setTimeout(r, 1));
  const s = accepted[0]!;
  const pending = s.read(new Uint8Array(8));
  const frames = new Uint8Array(2 * FRAME_HEADER_BYTES + 2);
  writeFrameHeader(frames, 0, FrameType.Data, 1, 0);
  writeFrameHeader(frames, FRAME_HEADER_BYTES, FrameType.Data, 1, 2);
  frames.set([7, 8], 2 * FRAME_HEADER_BYTES);
  await evil.write(frames);
  assertEquals(await pending, 2);
  assert(!server.closed);
  server.close();
});

Deno.test("a stream whose reader stalls does not hold up the others on the session", async () => {
  const { client, accept } = pair();
  const slow = client.open();
  const quick = client.open();
  await slow.write(new Uint8Array([1]));
  await quick.write(new Uint8Array([2]));
  const [a, b] = [await accept(), await accept()];
  // The callee pushes far more than a window to the stalled caller: its write must wait for
  // credit, not the session.
  let bigDone = false;
  const big = a.write(new Uint8Array(4 * STREAM_WINDOW_BYTES)).then(() => (bigDone = true));
  await new Promise((r) => setTimeout(r, 5));
  assert(!bigDone, "the big write waits for credit");
  await b.write(new TextEncoder().encode("pong"));
  const buf = new Uint8Array(16);
  assertEquals(new TextDecoder().decode(buf.subarray(0, (await quick.read(buf))!)), "pong");
  // Once the stalled reader reads, the big write completes.
  let got = 0;
  const sink = new Uint8Array(64 * 1024);
  while (got < 4 * STREAM_WINDOW_BYTES) got += (await slow.read(sink))!;
  await big;
  assert(bigDone);
  client.close();
});

Deno.test("tryWrite queues at once only what needs no waiting, and nothing otherwise", async () => {
  const { client, accept } = pair();
  const c = client.open();
  const hello = new TextEncoder().encode("hello");
  assert(c.tryWrite(hello), "a small write with credit goes at once");
  hello.fill(0); // copied when queued: the caller may reuse its buffer
  const s = await accept();
  const buf = new Uint8Array(16);
  assertEquals(new TextDecoder().decode(buf.subarray(0, (await s.read(buf))!)), "hello");
  // Beyond the credit it takes nothing (write() would wait for the window).
  assert(!c.tryWrite(new Uint8Array(STREAM_WINDOW_BYTES + 1)));
  await c.closeWrite();
  assert(!c.tryWrite(new Uint8Array(1)), "nothing after a half-close");
  assertEquals(await s.read(buf), null, "and the refused bytes never went out");
  const d = client.open();
  client.close();
  assert(!d.tryWrite(new Uint8Array(1)), "nothing on a closed session");
});

/** One end whose writes never complete: a peer that stopped reading. */
class StuckEnd extends MemEnd {
  override write(_p: Uint8Array): Promise<number> {
    return new Promise(() => {});
  }
}

/** Frames as one buffer: each [type, stream, payload length]. */
function frames(list: [number, number, number][]): Uint8Array {
  const out = new Uint8Array(list.reduce((a, [, , n]) => a + FRAME_HEADER_BYTES + n, 0));
  let off = 0;
  for (const [type, stream, n] of list) {
    writeFrameHeader(out, off, type as FrameTypeValue, stream, n);
    for (let i = 0; i < n; i++) out[off + FRAME_HEADER_BYTES + i] = (off + i) & 0xff;
    off += FRAME_HEADER_BYTES + n;
  }
  return out;
}

/** Waits (bounded) for `cond`, yielding to timers in between. */
async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 500 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
  assert(cond(), what);
}

Deno.test("tiny data frames share copies: memory follows the bytes, reads return them in order", async () => {
  const [evil, st] = memPipe();
  let stream: MuxStream | null = null;
  const server = new MuxSession(st, {
    role: "server",
    peerIdentity: null,
    onStream: (s) => stream = s,
  });
  // 60,000 one-byte frames, then frames of odd sizes, all within the window.
  const list: [number, number, number][] = [[FrameType.Open, 1, 0]];
  for (let i = 0; i < 60_000; i++) list.push([FrameType.Data, 1, 1]);
  for (const n of [3, 4095, 4097, 1, 9000, 2]) list.push([FrameType.Data, 1, n]);
  const wire = frames(list);
  await evil.write(wire);
  await until(() => stream !== null && stream!._queuedCopies > 0, "stream got the data");
  await new Promise((r) => setTimeout(r, 10));
  const total = 60_000 + 3 + 4095 + 4097 + 1 + 9000 + 2;
  assert(
    stream!._queuedCopies <= Math.ceil(total / 4096) + 6,
    `${stream!._queuedCopies} copies for ${total} bytes`,
  );
  // The payload bytes, in order, as the frames carried them.
  const want: number[] = [];
  let off = 0;
  for (const [, , n] of list) {
    for (let i = 0; i < n; i++) want.push((off + i) & 0xff);
    off += FRAME_HEADER_BYTES + n;
  }
  const got: number[] = [];
  const buf = new Uint8Array(5003);
  while (got.length < total) {
    const n = await stream!.read(buf);
    assert(n !== null && n > 0);
    got.push(...buf.subarray(0, n));
  }
  assertEquals(got.length, want.length);
  assert(got.every((b, i) => b === want[i]), "bytes out of order");
  assertEquals(stream!._queuedCopies, 0);
  server.close();
});

Deno.test("a peer that provokes replies but never reads loses the session", async () => {
  const [evil, st0] = memPipe();
  const st = new StuckEnd();
  st.peer = evil;
  evil.peer = st;
  void st0;
  const server = new MuxSession(st, {
    role: "server",
    peerIdentity: null,
    maxStreams: 1,
    maxBufferedBytes: 1024,
    onStream: () => {},
  });
  // Every Open beyond the first is refused, and each Refused waits for a write that never ends.
  const opens: [number, number, number][] = [];
  for (let id = 1; id <= 20_000; id++) opens.push([FrameType.Open, id, 0]);
  await evil.write(frames(opens));
  await until(() => server.closed, "the session should end once its queue passed the cap");
});

Deno.test("a write stuck on a congested session ends when its stream closes, and the session after the stall time", async () => {
  const [ct0, peer] = memPipe();
  const ct = new StuckEnd();
  ct.peer = peer;
  peer.peer = ct;
  void ct0;
  const client = new MuxSession(ct, {
    role: "client",
    peerIdentity: null,
    maxBufferedBytes: 1024,
    stallTimeoutMs: 200,
  });
  const a = client.open();
  const b = client.open();
  const c = client.open();
  // The first write fills the queue past its cap; later ones wait for a drain that never comes.
  const big = new Uint8Array(8 * 1024);
  assertEquals(await a.write(big), big.length);
  const wb = b.write(big).then(() => "written", (e) => (e as Error).name);
  const wc = c.write(big).then(() => "written", (e) => (e as Error).name);
  await new Promise((r) => setTimeout(r, 20));
  b.close(); // what the forwarder does when the call times out
  assertEquals(await wb, "BrokenPipe");
  assert(!client.closed, "one stream's end is not the session's");
  // Nothing drains within the stall time: the session ends and so does the other write. (The
  // session's timers do not hold the process open; this one keeps the test's loop alive.)
  const alive = setTimeout(() => {}, 10_000);
  assertEquals(await wc, "BrokenPipe");
  clearTimeout(alive);
  assert(client.closed);
});

Deno.test("a server session with no stream for the idle time is closed", async () => {
  const [ct, st] = memPipe();
  const client = new MuxSession(ct, { role: "client", peerIdentity: null });
  let accepted: MuxStream | null = null;
  const busy = new MuxSession(st, {
    role: "server",
    peerIdentity: null,
    idleSessionMs: 50,
    onStream: (s) => accepted = s,
  });
  // A stream open across several idle periods keeps it.
  const c = client.open();
  await until(() => accepted !== null, "stream accepted");
  await new Promise((r) => setTimeout(r, 200));
  assert(!busy.closed, "a session with an open stream stays");
  c.close();
  accepted!.close();
  await until(() => busy.closed, "the idle session should be closed");
  await until(() => client.closed, "and the client sees it end");
});
