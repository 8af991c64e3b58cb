/**
 * Dead-peer detection: a client session pings a peer that has gone silent while streams wait on
 * it, and ends the session when no answer comes; a peer that answers keeps it.
 * @module
 */
import { assert, assertEquals, assertRejects } from "../../tests/assert.ts";
import { MuxSession, type MuxStream } from "./session.ts";
import { memPipe } from "../../tests/mem_pipe.ts";

/** Polls `ok` every few ms until it holds (bounded generously; no timing is asserted). */
async function until(what: string, ok: () => boolean): Promise<void> {
  for (let i = 0; i < 2000 && !ok(); i++) await new Promise((r) => setTimeout(r, 5));
  assert(ok(), `timed out waiting for ${what}`);
}

Deno.test("a client session whose peer stopped answering is ended by its ping; its streams fail", async () => {
  // The server end is never read: a host cut off, or frozen, after the connection was made.
  const [ct] = memPipe();
  let closedWith: Error | null = null;
  const client = new MuxSession(ct, {
    role: "client",
    peerIdentity: null,
    pingIntervalMs: 10,
    pingTimeoutMs: 30,
    onClose: (e) => (closedWith = e),
  });
  // The session's timers do not keep a process alive (a proxy's listeners do); this does.
  const keepAlive = setInterval(() => {}, 1000);
  try {
    const s = client.open();
    await s.write(new TextEncoder().encode("GET / HTTP/1.1\r\n\r\n"));
    await assertRejects(() => s.read(new Uint8Array(16)), Deno.errors.ConnectionReset);
  } finally {
    clearInterval(keepAlive);
  }
  assert(client.closed);
  const why = closedWith as Error | null;
  assert(why instanceof Deno.errors.TimedOut, String(why));
  assert(why.message.includes("answered no ping"), why.message);
});

Deno.test("a peer that answers pings keeps its session while a stream waits on a slow reply", async () => {
  const [ct, st] = memPipe();
  let accepted: MuxStream | null = null;
  const client = new MuxSession(ct, {
    role: "client",
    peerIdentity: null,
    pingIntervalMs: 10,
    pingTimeoutMs: 30,
  });
  const server = new MuxSession(st, {
    role: "server",
    peerIdentity: null,
    onStream: (s) => (accepted = s),
  });
  try {
    const s = client.open();
    await until("the server to accept the stream", () => accepted !== null);
    // The reply is slow: nothing on the stream while the client pings (each Pong is a frame
    // the server sends); many more pings than the timeout allows unanswered.
    const before = server.stats().frames;
    await until("ten pongs", () => server.stats().frames >= before + 10);
    assert(!client.closed, "a session whose peer answered its pings was ended");
    await (accepted as MuxStream | null)!.write(new TextEncoder().encode("late"));
    const buf = new Uint8Array(16);
    const n = await s.read(buf);
    assertEquals(new TextDecoder().decode(buf.subarray(0, n ?? 0)), "late");
  } finally {
    client.close();
    server.close();
  }
});

Deno.test("an idle client session sends no pings", async () => {
  const [ct, st] = memPipe();
  const client = new MuxSession(ct, {
    role: "client",
    peerIdentity: null,
    pingIntervalMs: 5,
    pingTimeoutMs: 15,
  });
  const server = new MuxSession(st, { role: "server", peerIdentity: null });
  try {
    // Several ping intervals pass with no stream open: the session stays and writes nothing.
    for (let i = 0; i < 10; i++) await new Promise((r) => setTimeout(r, 5));
    assertEquals(client.stats().frames, 0);
    assert(!client.closed);
  } finally {
    client.close();
    server.close();
  }
});

Deno.test("a client session runs its ping timer only while streams are open", async () => {
  const [ct, st] = memPipe();
  let accepted: MuxStream | null = null;
  const client = new MuxSession(ct, {
    role: "client",
    peerIdentity: null,
    pingIntervalMs: 5,
    pingTimeoutMs: 15,
  });
  const server = new MuxSession(st, {
    role: "server",
    peerIdentity: null,
    onStream: (s) => (accepted = s),
  });
  try {
    assertEquals(client.pinging, false, "an idle session arms no timer");
    const s = client.open();
    assertEquals(client.pinging, true);
    await until("the server to accept the stream", () => accepted !== null);
    s.close();
    (accepted as MuxStream | null)!.close();
    await until("the stream to end on both sides", () => client.streamCount === 0);
    await until("the timer to stop", () => !client.pinging);
    assert(!client.closed);
    client.open();
    assertEquals(client.pinging, true, "the next stream arms it again");
  } finally {
    client.close();
    server.close();
  }
});
