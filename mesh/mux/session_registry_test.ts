import assert from "node:assert/strict";
import { MuxSessionRegistry } from "./session_registry.ts";
import { MuxSession, type MuxStream } from "./session.ts";
import { memPipe } from "../../tests/mem_pipe.ts";

/** A client session and a server session registered the way `listenMtls` registers them. */
function registeredPair(reg: MuxSessionRegistry) {
  const [ct, st] = memPipe();
  const accepted: MuxStream[] = [];
  let closed: () => void = () => {};
  const serverClosed = new Promise<void>((r) => (closed = r));
  const client = new MuxSession(ct, { role: "client", peerIdentity: null });
  let server: MuxSession | undefined = undefined;
  server = new MuxSession(st, {
    role: "server",
    peerIdentity: null,
    onStream: (s) => accepted.push(s),
    onClose: () => {
      if (server !== undefined) reg.remove(server);
      closed();
    },
  });
  reg.add(server);
  return { client, server, accepted, serverClosed };
}

async function readText(s: MuxStream): Promise<string> {
  const buf = new Uint8Array(1024);
  let out = "";
  while (true) {
    const n = await s.read(buf);
    if (n === null) return out;
    out += new TextDecoder().decode(buf.subarray(0, n));
  }
}

Deno.test("MuxSessionRegistry sums open sessions and keeps what ended ones counted", async () => {
  const reg = new MuxSessionRegistry();
  assert.deepEqual(reg.totals(), {
    open: 0,
    sessions: 0,
    streams: 0,
    writes: 0,
    frames: 0,
    rebalanced: 0,
  });
  const { client, server, accepted, serverClosed } = registeredPair(reg);
  const enc = new TextEncoder();
  const streams = [client.open(), client.open(), client.open()];
  for (const [i, s] of streams.entries()) {
    await s.write(enc.encode(`q${i}`));
    await s.closeWrite();
  }
  for (let i = 0; i < 1000 && accepted.length < 3; i++) await new Promise((r) => setTimeout(r, 1));
  assert.equal(accepted.length, 3);
  // Every accepted stream answers in the same turn, so the server batches the frames.
  for (const a of accepted) {
    void a.write(enc.encode("answer"));
    void a.closeWrite();
  }
  const answers = await Promise.all(streams.map(readText));
  assert.deepEqual(answers, ["answer", "answer", "answer"]);

  const live = reg.totals();
  const st = server.stats();
  assert.equal(reg.size, 1);
  assert.equal(live.open, 1);
  assert.equal(live.sessions, 1);
  assert.equal(live.streams, 3);
  assert.equal(live.writes, st.flushes);
  assert.equal(live.frames, st.frames);
  assert.ok(live.frames > live.writes, `batched: ${live.frames} frames in ${live.writes} writes`);

  // The peer goes away: the session ends and leaves the registry, its counts stay.
  client.close();
  await serverClosed;
  const after = reg.totals();
  assert.equal(reg.size, 0);
  assert.deepEqual(after, { ...live, open: 0 });
  reg.remove(server); // twice is harmless
  assert.deepEqual(reg.totals(), after);

  // A session that ended before it was added is counted once and never open.
  reg.add(server);
  assert.equal(reg.size, 0);
  assert.equal(reg.totals().sessions, 2);
  assert.equal(reg.totals().streams, 6);
});
