import { assert, assertEquals } from "../../../tests/assert.ts";
import { H2Connection, STREAM_WINDOW } from "./connection.ts";
import { ErrorCode, Flag, FrameType, PREFACE, putFrameHeader, read31, read32 } from "./frames.ts";
import { Bytes, encodeField } from "./hpack.ts";
import type { HeaderRecord } from "./fields.ts";
import type { H2Stream } from "./stream.ts";

/** One frame as bytes. */
function frame(
  type: number,
  flags: number,
  id: number,
  payload: Uint8Array = new Uint8Array(0),
): Uint8Array {
  const b = new Uint8Array(9 + payload.length);
  putFrameHeader(b, 0, payload.length, type, flags, id);
  b.set(payload, 9);
  return b;
}

function cat(...parts: Uint8Array[]): Uint8Array {
  const n = parts.reduce((a, p) => a + p.length, 0);
  const b = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    b.set(p, o);
    o += p.length;
  }
  return b;
}

function block(fields: [string, string][]): Uint8Array {
  const out = new Bytes(64);
  for (const [n, v] of fields) encodeField(out, n, v);
  return out.buf.slice(0, out.length);
}

const GET: [string, string][] = [
  [":method", "GET"],
  [":scheme", "http"],
  [":path", "/"],
  [":authority", "a"],
];

function u32(v: number): Uint8Array {
  return new Uint8Array([(v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff]);
}

interface Parsed {
  type: number;
  flags: number;
  id: number;
  payload: Uint8Array;
}

function parse(b: Uint8Array): Parsed[] {
  const out: Parsed[] = [];
  let p = 0;
  while (p + 9 <= b.length) {
    const len = (b[p]! << 16) | (b[p + 1]! << 8) | b[p + 2]!;
    out.push({
      type: b[p + 3]!,
      flags: b[p + 4]!,
      id: read31(b, p + 5),
      payload: b.slice(p + 9, p + 9 + len),
    });
    p += 9 + len;
  }
  return out;
}

/** A server connection fed raw bytes; what it wrote and whether it closed. */
function rawServer(onStream?: (s: H2Stream, h: HeaderRecord, end: boolean) => void) {
  const written: Uint8Array[] = [];
  let closed = false;
  const c = new H2Connection({
    role: "server",
    maxConcurrentStreams: 4,
    maxHeaderListBytes: 1024,
    onStream,
  });
  c.start({
    write: (b) => {
      written.push(b);
      return undefined;
    },
    close: () => closed = true,
  });
  return {
    c,
    feed: (b: Uint8Array) => c.feed(b),
    frames: () => parse(cat(...written)),
    get closed() {
      return closed;
    },
  };
}

const settle = () => new Promise((r) => setTimeout(r, 0));

function goawayCode(frames: Parsed[]): number | null {
  const g = frames.find((f) => f.type === FrameType.GOAWAY);
  return g === undefined ? null : read32(g.payload, 4);
}

const OPEN = cat(PREFACE, frame(FrameType.SETTINGS, 0, 0));

/** Two connections joined in memory; the server answers with `serve`. */
function pair(serve: (s: H2Stream, h: HeaderRecord, end: boolean) => void) {
  const server = new H2Connection({
    role: "server",
    maxConcurrentStreams: 100,
    maxHeaderListBytes: 65536,
    onStream: serve,
  });
  const client = new H2Connection({
    role: "client",
    maxConcurrentStreams: 100,
    maxHeaderListBytes: 65536,
  });
  server.start({
    write: (b) => void queueMicrotask(() => client.feed(b)),
    close: () => queueMicrotask(() => client.ended()),
  });
  client.start({
    write: (b) => void queueMicrotask(() => server.feed(b)),
    close: () => queueMicrotask(() => server.ended()),
  });
  return { client, server };
}

function collect(s: H2Stream): Promise<{ body: Uint8Array; trailers: HeaderRecord | null }> {
  return new Promise((resolve) => {
    const parts: Uint8Array[] = [];
    let trailers: HeaderRecord | null = null;
    s.on("trailers", (t: HeaderRecord) => trailers = t);
    s.on("data", (c: Uint8Array) => parts.push(c));
    s.on("end", () => resolve({ body: cat(...parts), trailers }));
  });
}

Deno.test("wire: a request and its response cross with bodies larger than the windows, and trailers", async () => {
  const big = new Uint8Array(3 * STREAM_WINDOW + 12345).map((_, i) => i & 0xff);
  const { client } = pair((s, h) => {
    void collect(s).then(({ body, trailers }) => {
      s.respond({ ":status": 200, "x-path": String(h[":path"]), "set-cookie": ["a=1", "b=2"] }, {
        waitForTrailers: true,
      });
      s.once("wantTrailers", () => s.sendTrailers({ "x-got": String(trailers?.["x-req"]) }));
      // Echo the body back in pieces, minding 'drain'.
      let off = 0;
      const pump = () => {
        while (off < body.length) {
          const n = Math.min(50_000, body.length - off);
          const more = s.write(body.subarray(off, off + n));
          off += n;
          if (!more) return void s.once("drain", pump);
        }
        s.end();
      };
      pump();
    });
  });
  const st = client.request({
    ":method": "POST",
    ":scheme": "http",
    ":path": "/up",
    ":authority": "x",
  }, {
    waitForTrailers: true,
  });
  const head = new Promise<HeaderRecord>((r) => st.once("response", r));
  const closed = new Promise((r) => st.once("close", r));
  st.once("wantTrailers", () => st.sendTrailers({ "x-req": "t1" }));
  st.write(big);
  st.end();
  const h = await head;
  assertEquals(h[":status"], "200");
  assertEquals(h["x-path"], "/up");
  assertEquals(h["set-cookie"], ["a=1", "b=2"]);
  const got = await collect(st);
  assertEquals(got.body.length, big.length);
  assert(got.body.every((v, i) => v === big[i]), "the body came back unchanged");
  assertEquals(got.trailers?.["x-got"], "t1");
  await closed;
  assertEquals(st.rstCode, ErrorCode.NO_ERROR);
  client.destroy();
});

Deno.test("wire: a GOAWAY refuses the client's streams past its last id, which can be retried", async () => {
  const { client, server } = pair((s) => s.respond({ ":status": 204 }, { endStream: true }));
  const a = client.request(
    { ":method": "GET", ":scheme": "http", ":path": "/", ":authority": "x" },
    {
      endStream: true,
    },
  );
  await new Promise((r) => a.once("close", r));
  assertEquals(a.rstCode, ErrorCode.NO_ERROR);
  const goaway = new Promise<number>((r) => client.once("goaway", (code: number) => r(code)));
  server.close();
  assertEquals(await goaway, ErrorCode.NO_ERROR);
  assertEquals(client.usable, false);
  let threw = false;
  try {
    client.request({ ":method": "GET", ":path": "/" }, { endStream: true });
  } catch {
    threw = true;
  }
  assert(threw, "a closing connection takes no new request");
  client.destroy();
});

Deno.test("wire: protocol errors end the connection with GOAWAY and the right code", async () => {
  const cases: [string, Uint8Array, number][] = [
    ["bad preface", new TextEncoder().encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), 1],
    ["first frame not SETTINGS", cat(PREFACE, frame(FrameType.PING, 0, 0, new Uint8Array(8))), 1],
    [
      "frame over the size limit",
      cat(OPEN, frame(FrameType.DATA, 0, 1, new Uint8Array(20_000))),
      6,
    ],
    ["PUSH_PROMISE from a client", cat(OPEN, frame(FrameType.PUSH_PROMISE, 4, 1, u32(2))), 1],
    ["bad HPACK", cat(OPEN, frame(FrameType.HEADERS, 5, 1, new Uint8Array([0x80]))), 9],
    ["SETTINGS of bad size", cat(OPEN, frame(FrameType.SETTINGS, 0, 0, new Uint8Array(5))), 6],
    ["PING on a stream", cat(OPEN, frame(FrameType.PING, 0, 1, new Uint8Array(8))), 1],
    [
      "connection window overflow",
      cat(OPEN, frame(FrameType.WINDOW_UPDATE, 0, 0, u32(0x7fff_ffff))),
      ErrorCode.FLOW_CONTROL_ERROR,
    ],
    [
      "INITIAL_WINDOW_SIZE too large",
      cat(OPEN, frame(FrameType.SETTINGS, 0, 0, new Uint8Array([0, 4, 0x80, 0, 0, 0]))),
      ErrorCode.FLOW_CONTROL_ERROR,
    ],
    ["DATA on an idle stream", cat(OPEN, frame(FrameType.DATA, 0, 9, new Uint8Array(1))), 1],
    [
      "a header block interrupted",
      cat(
        OPEN,
        frame(FrameType.HEADERS, 0, 1, block(GET)),
        frame(FrameType.PING, 0, 0, new Uint8Array(8)),
      ),
      1,
    ],
  ];
  for (const [what, bytes, code] of cases) {
    const s = rawServer();
    s.feed(bytes);
    await settle();
    assertEquals(goawayCode(s.frames()), code, what);
    assert(s.closed && s.c.closed, `${what}: the connection closed`);
  }
});

Deno.test("wire: floods end the connection with ENHANCE_YOUR_CALM", async () => {
  const pings = Array.from({ length: 1100 }, () => frame(FrameType.PING, 0, 0, new Uint8Array(8)));
  const settings = Array.from({ length: 1100 }, () => frame(FrameType.SETTINGS, 0, 0));
  const conts = Array.from({ length: 100 }, () => frame(FrameType.CONTINUATION, 0, 1));
  // Rapid reset (CVE-2023-44487): open a stream, cancel it, over and over.
  const resets: Uint8Array[] = [];
  for (let i = 0; i < 1100; i++) {
    const id = 2 * i + 1;
    resets.push(frame(FrameType.HEADERS, Flag.END_HEADERS, id, block(GET)));
    resets.push(frame(FrameType.RST_STREAM, 0, id, u32(ErrorCode.CANCEL)));
  }
  const empties = Array.from({ length: 1100 }, () => frame(FrameType.DATA, 0, 1));
  const cases: [string, Uint8Array][] = [
    ["PING flood", cat(OPEN, ...pings)],
    ["SETTINGS flood", cat(OPEN, ...settings)],
    ["CONTINUATION flood", cat(OPEN, frame(FrameType.HEADERS, 0, 1, block(GET)), ...conts)],
    ["rapid reset", cat(OPEN, ...resets)],
    [
      "empty DATA flood",
      cat(OPEN, frame(FrameType.HEADERS, Flag.END_HEADERS, 1, block(GET)), ...empties),
    ],
  ];
  for (const [what, bytes] of cases) {
    let served = 0;
    const s = rawServer(() => served++);
    s.feed(bytes);
    await settle();
    assertEquals(goawayCode(s.frames()), ErrorCode.ENHANCE_YOUR_CALM, what);
    assert(s.c.closed, `${what}: the connection closed`);
    assert(served <= 1100, what);
  }
});

Deno.test("wire: stream errors reset only the stream; limits refuse streams and big header lists", async () => {
  const served: HeaderRecord[] = [];
  const s = rawServer((_st, h) => served.push(h));
  s.feed(OPEN);
  // Uppercase name, a CR in a value, a pseudo-header after a regular field.
  s.feed(
    frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, 1, block([...GET, ["X-Up", "1"]])),
  );
  s.feed(
    frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, 3, block([...GET, ["x", "a\rb"]])),
  );
  s.feed(
    frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, 5, block([["x", "1"], ...GET])),
  );
  // DATA past the stream's window.
  s.feed(frame(FrameType.HEADERS, Flag.END_HEADERS, 7, block(GET)));
  for (let sent = 0; sent <= STREAM_WINDOW; sent += 16_384) {
    s.feed(frame(FrameType.DATA, 0, 7, new Uint8Array(16_384)));
  }
  // A header list over 1024 bytes gets 431.
  s.feed(
    frame(
      FrameType.HEADERS,
      Flag.END_HEADERS | Flag.END_STREAM,
      9,
      block([...GET, ["x", "v".repeat(2000)]]),
    ),
  );
  await settle();
  const rst = (id: number) => {
    const f = s.frames().find((f) => f.type === FrameType.RST_STREAM && f.id === id);
    return f === undefined ? null : read32(f.payload, 0);
  };
  assertEquals(rst(1), ErrorCode.PROTOCOL_ERROR);
  assertEquals(rst(3), ErrorCode.PROTOCOL_ERROR);
  assertEquals(rst(5), ErrorCode.PROTOCOL_ERROR);
  assertEquals(rst(7), ErrorCode.FLOW_CONTROL_ERROR);
  const h431 = s.frames().find((f) => f.type === FrameType.HEADERS && f.id === 9);
  assert(h431 !== undefined && (h431.flags & Flag.END_STREAM) !== 0);
  assertEquals(goawayCode(s.frames()), null, "the connection stays up");
  assertEquals(served.length, 1, "only stream 7 reached the application");

  // Concurrency: 4 streams open at most; the fifth is refused.
  const t = rawServer(() => {});
  t.feed(OPEN);
  for (const id of [1, 3, 5, 7, 9]) {
    t.feed(frame(FrameType.HEADERS, Flag.END_HEADERS, id, block(GET)));
  }
  await settle();
  const refused = t.frames().filter((f) => f.type === FrameType.RST_STREAM);
  assertEquals(refused.map((f) => [f.id, read32(f.payload, 0)]), [[9, ErrorCode.REFUSED_STREAM]]);
});

Deno.test("wire: frames split at the peer's frame size; CONTINUATION carries big header blocks", async () => {
  const got: HeaderRecord[] = [];
  const { client } = pair((s, h) => {
    got.push(h);
    s.respond({ ":status": 200 }, { endStream: true });
  });
  const long = "z".repeat(40_000);
  const st = client.request({
    ":method": "GET",
    ":scheme": "http",
    ":path": "/",
    ":authority": "x",
    "x-long": long,
  }, {
    endStream: true,
  });
  await new Promise((r) => st.once("close", r));
  assertEquals(got[0]?.["x-long"], long);
  client.destroy();
});

Deno.test("wire: a peer that opens huge windows and stops reading leaves the body on the stream", async () => {
  let streamOf: H2Stream | null = null;
  let writes = 0;
  const c = new H2Connection({
    role: "server",
    maxConcurrentStreams: 4,
    maxHeaderListBytes: 4096,
    onStream: (s) => streamOf = s,
  });
  // The first write goes out; the next never completes (the peer reads nothing more).
  c.start({
    write: () => writes++ === 0 ? undefined : new Promise<void>(() => {}),
    close: () => {},
  });
  c.feed(cat(
    PREFACE,
    frame(FrameType.SETTINGS, 0, 0, new Uint8Array([0, 4, 0x7f, 0xff, 0xff, 0xff])),
    frame(FrameType.WINDOW_UPDATE, 0, 0, u32(0x7fff_ffff - 65_535)),
    frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, 1, block(GET)),
  ));
  await settle();
  const s = streamOf!;
  assert(s !== null);
  s.respond({ ":status": 200 });
  await settle();
  const chunk = new Uint8Array(64 * 1024);
  for (let i = 0; i < 128; i++) s.write(chunk); // 8 MiB, whatever write() answers
  await settle();
  // At most about 1 MiB went into the connection's buffer; the rest waits on the stream.
  assert(s.pendingBytes >= 8 * 1024 * 1024 - 1024 * 1024 - 64 * 1024, `${s.pendingBytes}`);
  c.destroy();
});

Deno.test("wire: a server that answers before the request body ends reads the rest and drops it", async () => {
  const { client } = pair((s) => s.respond({ ":status": 403 }, { endStream: true }));
  const st = client.request({
    ":method": "POST",
    ":scheme": "http",
    ":path": "/",
    ":authority": "x",
  });
  const closed = new Promise((r) => st.once("close", r));
  const head = new Promise<HeaderRecord>((r) => st.once("response", r));
  // More than the stream's window: the client can finish only if the server keeps reading.
  st.write(new Uint8Array(3 * STREAM_WINDOW));
  st.end();
  assertEquals((await head)[":status"], "403");
  await closed;
  assertEquals(st.rstCode, ErrorCode.NO_ERROR);
  assertEquals(st.pendingBytes, 0, "the whole body was sent");
  client.destroy();
});

Deno.test("wire: cancellations among completed streams are not a rapid reset", async () => {
  const s = rawServer((st) => st.respond({ ":status": 200 }, { endStream: true }));
  const frames: Uint8Array[] = [OPEN];
  for (let i = 0; i < 2400; i++) {
    const id = 2 * i + 1;
    if (i % 2 === 0) {
      frames.push(frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, id, block(GET)));
    } else {
      frames.push(frame(FrameType.HEADERS, Flag.END_HEADERS, id, block(GET)));
      frames.push(frame(FrameType.RST_STREAM, 0, id, u32(ErrorCode.CANCEL)));
    }
  }
  s.feed(cat(...frames));
  await settle();
  assertEquals(goawayCode(s.frames()), null, "1,200 cancellations among 1,200 answers");
  assert(!s.c.closed);
  s.c.destroy();
});
