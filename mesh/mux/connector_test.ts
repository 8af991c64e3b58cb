import { assert, assertEquals, assertRejects } from "../../tests/assert.ts";
import type { Endpoint } from "../forward/types.ts";
import { MuxConnector, type MuxDial, PLAIN_RETRY_AFTER_MS } from "./connector.ts";
import { MuxSession, type MuxStream } from "./session.ts";

const EP: Endpoint = { key: "10.0.0.1:15443", hostname: "127.0.0.1", port: 0, identity: "x" };

/** A TCP pair on loopback: the connector gets one end, a mux server (or nothing) the other. */
async function tcpPair(): Promise<[Deno.Conn, Deno.Conn]> {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const [a, b] = await Promise.all([
    Deno.connect({ hostname: "127.0.0.1", port: (l.addr as Deno.NetAddr).port }),
    l.accept(),
  ]);
  l.close();
  return [a, b];
}

/** A dialer whose connections lead to mux servers that echo each stream; counts dials. */
function echoDialer(opts: { mux?: boolean; gate?: Promise<void>; notAfter?: () => number } = {}) {
  const servers: MuxSession[] = [];
  const others: Deno.Conn[] = [];
  let dials = 0;
  const dial = async (_ep: Endpoint): Promise<MuxDial> => {
    dials++;
    await opts.gate;
    const [a, b] = await tcpPair();
    if (opts.mux ?? true) {
      servers.push(
        new MuxSession(b, {
          role: "server",
          peerIdentity: "spiffe://td/svc/caller",
          onStream: (s) => void echo(s),
        }),
      );
    } else {
      others.push(b);
    }
    return {
      conn: a,
      mux: opts.mux ?? true,
      peerIdentity: "spiffe://td/svc/callee",
      ...(opts.notAfter ? { notAfter: opts.notAfter() } : {}),
    };
  };
  const close = () => {
    for (const s of servers) s.close();
    for (const c of others) c.close();
  };
  return { dial, dials: () => dials, servers, close };
}

async function echo(s: MuxStream): Promise<void> {
  const buf = new Uint8Array(1024);
  try {
    while (true) {
      const n = await s.read(buf);
      if (n === null) break;
      await s.write(buf.subarray(0, n));
    }
    await s.closeWrite();
  } catch {
    // The test closed it.
  }
}

async function roundTrip(c: Deno.Conn, text: string): Promise<string> {
  await c.write(new TextEncoder().encode(text));
  const buf = new Uint8Array(1024);
  const n = await c.read(buf);
  return new TextDecoder().decode(buf.subarray(0, n ?? 0));
}

Deno.test("a burst of connects dials every session at once and spreads over them", async () => {
  let open!: () => void;
  const gate = new Promise<void>((r) => (open = r));
  const d = echoDialer({ gate });
  const mc = new MuxConnector({ dial: d.dial, sessionsPerEndpoint: 2 });
  const first = Array.from({ length: 5 }, () => mc.connect(EP));
  open();
  const conns = await Promise.all(first);
  assertEquals(d.dials(), 2, "the burst waits for both sessions, dialled together");
  for (let i = 0; i < 5; i++) conns.push(await mc.connect(EP));
  assertEquals(d.dials(), 2, "no more sessions than the cap");
  const answers = await Promise.all(conns.map((c, i) => roundTrip(c, `ping ${i}`)));
  assertEquals(answers, conns.map((_, i) => `ping ${i}`));
  assertEquals(d.servers.map((s) => s.stats().opened), [5, 5], "streams spread evenly");
  const st = mc.stats();
  assertEquals(st.sessions, 2);
  assertEquals(st.streams, 10);
  assertEquals(st.open, 2);
  for (const c of conns) c.close();
  mc.close();
  d.close();
});

Deno.test("a peer without the mux gets plain connections until the retry time passes", async () => {
  let now = 0;
  const d = echoDialer({ mux: false });
  const mc = new MuxConnector({ dial: d.dial, now: () => now, sessionsPerEndpoint: 1 });
  const a = await mc.connect(EP);
  const b = await mc.connect(EP);
  assert(!("peerIdentity" in a), "a plain connection, not a stream");
  assertEquals(d.dials(), 2, "each plain connection is its own dial");
  assertEquals(mc.stats().plain, 2);
  now += PLAIN_RETRY_AFTER_MS + 1;
  const c = await mc.connect(EP);
  assertEquals(d.dials(), 3);
  for (const x of [a, b, c]) x.close();
  mc.close();
  d.close();
});

Deno.test("a dead session is replaced, and dial failures reach the caller", async () => {
  const d = echoDialer();
  const mc = new MuxConnector({ dial: d.dial, sessionsPerEndpoint: 1 });
  const a = await mc.connect(EP);
  assertEquals(await roundTrip(a, "one"), "one");
  d.servers[0]!.close();
  await assertRejects(() => a.read(new Uint8Array(4)), Deno.errors.ConnectionReset);
  const b = await mc.connect(EP);
  assertEquals(d.dials(), 2);
  assertEquals(await roundTrip(b, "two"), "two");
  b.close();
  mc.close();
  d.close();

  const failing = new MuxConnector({
    dial: () => Promise.reject(new Deno.errors.ConnectionRefused("refused")),
  });
  await assertRejects(() => failing.connect(EP), Deno.errors.ConnectionRefused);
  failing.close();
  await assertRejects(() => failing.connect(EP), Deno.errors.ConnectionRefused);
});

Deno.test("sessions without streams are closed after the idle time", async () => {
  let now = 0;
  const d = echoDialer();
  const mc = new MuxConnector({
    dial: d.dial,
    idleSessionMs: 1000,
    now: () => now,
    sessionsPerEndpoint: 1,
  });
  const a = await mc.connect(EP);
  mc.sweep();
  assertEquals(mc.stats().open, 1);
  a.close();
  mc.sweep(); // idle from now
  now += 999;
  mc.sweep();
  assertEquals(mc.stats().open, 1);
  now += 1;
  mc.sweep();
  assertEquals(mc.stats().open, 0);
  mc.close();
  d.close();
});

Deno.test("callers that waited on a dial the peer turned down each get their own connection", async () => {
  const d = echoDialer({ mux: false });
  const mc = new MuxConnector({ dial: d.dial, sessionsPerEndpoint: 2 });
  const conns = await Promise.all([mc.connect(EP), mc.connect(EP), mc.connect(EP)]);
  assertEquals(new Set(conns).size, 3);
  assertEquals(mc.stats().open, 0);
  for (const c of conns) c.close();
  mc.close();
  d.close();
});

Deno.test("a session past the maximum age takes no new streams and closes when drained", async () => {
  let now = 0;
  const d = echoDialer();
  const mc = new MuxConnector({
    dial: d.dial,
    now: () => now,
    sessionsPerEndpoint: 1,
    maxSessionAgeMs: 1000,
  });
  const a = await mc.connect(EP);
  now = 1000;
  const b = await mc.connect(EP);
  assertEquals(d.dials(), 2, "the old session is retired, so a new one is dialled");
  assertEquals(await roundTrip(a, "old"), "old", "streams on the retired session still work");
  assertEquals(await roundTrip(b, "new"), "new");
  mc.sweep();
  assertEquals(mc.stats().open, 2, "the retired session still has a stream");
  a.close();
  mc.sweep();
  assertEquals(mc.stats().open, 1);
  b.close();
  mc.close();
  d.close();
});

Deno.test("once a peer turned the mux down, dialPlain opens its connections", async () => {
  let now = 0;
  const d = echoDialer({ mux: false });
  let plainDials = 0;
  const mc = new MuxConnector({
    dial: d.dial,
    dialPlain: async (ep) => {
      plainDials++;
      return (await d.dial(ep)).conn;
    },
    now: () => now,
  });
  const a = await mc.connect(EP); // learns that the peer has no mux
  const b = await mc.connect(EP);
  assertEquals(plainDials, 1);
  now += PLAIN_RETRY_AFTER_MS + 1;
  const c = await mc.connect(EP); // asks again with the mux offered
  assertEquals(plainDials, 1);
  assertEquals(mc.stats().plain, 3);
  for (const x of [a, b, c]) x.close();
  mc.close();
  d.close();
});

Deno.test("a session halfway to its certificate's expiry takes no new streams, nor reuses pooled ones", async () => {
  // The callee cuts a session when the caller's certificate expires, mid-stream if need be:
  // streams already open keep working, new calls go to a session dialled with fresh material.
  let now = 0;
  let life = 2_400;
  const d = echoDialer({ notAfter: () => now + life });
  const mc = new MuxConnector({ dial: d.dial, now: () => now, sessionsPerEndpoint: 1 });
  const a = await mc.connect(EP);
  assert((a as MuxStream).reusable, "a young session's stream is reusable");
  now = 1_199;
  const b = await mc.connect(EP);
  assertEquals(d.dials(), 1, "before halfway: same session");
  now = 1_200;
  life = 3_600_000; // the renewed certificate
  const c = await mc.connect(EP);
  assertEquals(d.dials(), 2, "halfway to expiry: a new session");
  assertEquals(await roundTrip(a, "old"), "old", "streams on the retired session still work");
  assertEquals(await roundTrip(c, "new"), "new");
  // The pool checks `reusable` without a clock: a timer turns it off (real time, >= 1 s).
  for (let i = 0; i < 2000 && (a as MuxStream).reusable; i++) {
    await new Promise((r) => setTimeout(r, 5));
  }
  assert(!(a as MuxStream).reusable, "pooled streams of the retired session are not reused");
  assert((c as MuxStream).reusable);
  a.close();
  b.close();
  c.close();
  mc.close();
  d.close();
});
