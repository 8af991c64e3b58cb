/**
 * Distrusting a rotated-out intermediate at the control plane's two chain checks, with real
 * sockets: the Raft transport (listener, with its open links cut, and dialer) and the control
 * API (at the handshake, and again on an open connection's next request). A leaf minted with the old intermediate's key is
 * accepted before the distrust (so the refusals below are the distrust's doing) and refused
 * after it; a leaf of the new intermediate is untouched.
 */
import type tls from "node:tls";
import { X509Certificate } from "node:crypto";
import { assert, assertEquals, assertRejects } from "../assert.ts";
import {
  type CaState,
  createOfflineRootCa,
  distrustedIntermediatePems,
  distrustIntermediate,
  installIntermediate,
  signIntermediate,
  trustBundlePem,
} from "../../control/ca/mod.ts";
import {
  tlsDialer,
  tlsListenerFactory,
  type TlsStreamListener,
} from "../../control/transport/mod.ts";
import { serveApiHttps } from "../../control/api/https_server.ts";
import { DistrustedIssuers, mtlsConnect, splitPemCerts } from "../../common/tls/mod.ts";
import { ControlIdentity } from "../../control/tls/mod.ts";
import { controlLeaf } from "./_pki.ts";

const TD = "skein.local";
const LOOPBACK = "127.0.0.1";
/** Liveness cap on waiting for something that must happen; not a timing assertion. */
const WAIT_LIMIT_MS = 20_000;

async function waitUntil(cond: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + WAIT_LIMIT_MS;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** An offline-root CA after an intermediate rotation: `before` still signs with the old one. */
async function rotatedCa(): Promise<{ before: CaState; after: CaState; oldId: string }> {
  const made = await createOfflineRootCa({ trustDomain: TD, now: Date.now() });
  const next = await signIntermediate({
    rootCertPem: made.root.certPem,
    rootKeyPem: made.root.keyPem,
    now: Date.now(),
  });
  const after = await installIntermediate(made.state, { ...next, now: Date.now() });
  return { before: made.state, after, oldId: made.state.roots[0]!.intermediate!.id };
}

/** A TLS source whose distrust list the test swaps. */
function source(ca: CaState, pair: { certPem: string; keyPem: string }) {
  const listeners = new Set<() => void>();
  const s = {
    trustDomain: TD,
    distrusted: new DistrustedIssuers([]),
    material: () => ({ certPem: pair.certPem, keyPem: pair.keyPem, caPem: trustBundlePem(ca) }),
    isRevoked: () => false,
    isDistrusted: (der: Uint8Array) => s.distrusted.refuses(der),
    onDistrust: (l: () => void) => {
      listeners.add(l);
      return () => listeners.delete(l);
    },
    /** Distrusts `pems` from now on, as a ControlIdentity does when it applies the change. */
    distrust: (pems: string[]) => {
      s.distrusted = new DistrustedIssuers(pems);
      for (const l of listeners) l();
    },
  };
  return s;
}

/** Writes one request on `socket`; resolves with what came back before the body or a close. */
function exchange(socket: tls.TLSSocket, path: string): Promise<string> {
  return new Promise((resolve) => {
    let got = "";
    const done = () => {
      socket.off("data", onData);
      socket.off("close", done);
      resolve(got);
    };
    const onData = (d: Uint8Array) => {
      got += new TextDecoder().decode(d);
      if (got.includes("\r\n\r\nok")) done();
    };
    socket.on("data", onData);
    socket.once("close", done);
    socket.write(`GET ${path} HTTP/1.1\r\nhost: x\r\n\r\n`);
  });
}

Deno.test("the Raft transport refuses a control leaf from a distrusted intermediate, both ways", async () => {
  const { before, after, oldId } = await rotatedCa();
  const server = source(after, await controlLeaf(after, "cp-1"));
  const minted = source(after, await controlLeaf(before, "cp-2"));
  const listener = await tlsListenerFactory({ source: server }).listen({
    hostname: LOOPBACK,
    port: 0,
  }) as TlsStreamListener;
  const addr = listener.addr;
  const accepted: { close(): void }[] = [];
  const acceptLoop = (async () => {
    try {
      for (;;) accepted.push(await listener.accept());
    } catch {
      // Closed.
    }
  })();
  try {
    // Before the distrust the old intermediate's leaf still chains to the root: admitted.
    const first = await tlsDialer({ source: minted }).dial(addr, AbortSignal.timeout(10_000));
    await waitUntil(() => listener.stats.accepted === 1, "the old leaf to be admitted");

    const distrusted = distrustIntermediate(after, oldId, Date.now());
    server.distrust(distrustedIntermediatePems(distrusted));
    // The link it opened before is cut: its reader sees the end of the stream.
    assertEquals(await first.read(new Uint8Array(8)).catch(() => null), null);
    first.close();
    // TLS 1.3 finishes the client's side first; the server then cuts it without a frame.
    const second = await tlsDialer({ source: minted }).dial(addr, AbortSignal.timeout(10_000))
      .catch(() => null);
    await waitUntil(() => listener.stats.refused.distrusted === 1, "the refusal");
    second?.close();
    assertEquals(listener.stats.accepted, 1, JSON.stringify(listener.stats));

    // A node holding the new intermediate's leaf is still admitted.
    const good = source(after, await controlLeaf(after, "cp-3"));
    const third = await tlsDialer({ source: good }).dial(addr, AbortSignal.timeout(10_000));
    await waitUntil(() => listener.stats.accepted === 2, "the new leaf to be admitted");
    third.close();

    // The dialer refuses a server presenting a leaf of the distrusted intermediate.
    const impostor = await tlsListenerFactory({ source: minted }).listen({
      hostname: LOOPBACK,
      port: 0,
    });
    try {
      const checking = source(after, await controlLeaf(after, "cp-4"));
      checking.distrust(server.distrusted.pems as string[]);
      await assertRejects(
        () => tlsDialer({ source: checking }).dial(impostor.addr, AbortSignal.timeout(10_000)),
        Error,
        "distrusted intermediate",
      );
    } finally {
      impostor.close();
    }
  } finally {
    listener.close();
    for (const s of accepted) s.close();
    await acceptLoop;
  }
});

Deno.test("the control API refuses a client leaf from a distrusted intermediate, on open connections too", async () => {
  const { before, after, oldId } = await rotatedCa();
  const serverLeaf = await controlLeaf(after, "cp-1", { extraSans: { ip: [LOOPBACK] } });
  let distrusted = new DistrustedIssuers([]);
  const srv = await serveApiHttps({
    hostname: LOOPBACK,
    port: 0,
    material: {
      certPem: serverLeaf.certPem,
      keyPem: serverLeaf.keyPem,
      caPem: trustBundlePem(after),
    },
    trustDomain: TD,
    isDistrusted: (der) => distrusted.refuses(der),
    handler: () => new Response("ok"),
  });
  const sockets: tls.TLSSocket[] = [];
  const dial = async (c: { certPem: string; keyPem: string }) => {
    const s = await mtlsConnect({
      host: LOOPBACK,
      port: srv.port,
      cert: c.certPem,
      key: c.keyPem,
      ca: trustBundlePem(after),
      expectSpiffe: `spiffe://${TD}/control/cp-1`,
    });
    sockets.push(s);
    return s;
  };
  try {
    const minted = await controlLeaf(before, "cp-2");
    const open = await dial(minted);
    assert((await exchange(open, "/a")).includes(" 200 "), "admitted before the distrust");

    distrusted = new DistrustedIssuers(
      distrustedIntermediatePems(distrustIntermediate(after, oldId, Date.now())),
    );
    // The open connection is cut at its next request, with no answer.
    assertEquals(await exchange(open, "/b"), "");
    assertEquals(srv.stats.refused.distrusted, 1);
    // A new connection with that leaf gets nothing either.
    const fresh = await dial(minted);
    assertEquals(await exchange(fresh, "/c"), "");
    assertEquals(srv.stats.refused.distrusted, 2);
    // A leaf of the new intermediate is answered.
    const good = await dial(await controlLeaf(after, "cp-3"));
    assert((await exchange(good, "/d")).includes(" 200 "));
  } finally {
    for (const s of sockets) s.destroy();
    await srv.shutdown(0);
  }
});

Deno.test("a control node's identity takes the distrust list from the CA state and says when it grows", async () => {
  const { before, after, oldId } = await rotatedCa();
  const identity = await ControlIdentity.create({
    node: "cp-1",
    trustDomain: TD,
    ca: after,
    sans: { ip: [LOOPBACK], dns: [] },
  });
  try {
    let heard = 0;
    identity.onDistrust(() => heard++);
    const minted = await controlLeaf(before, "cp-2");
    const der = new X509Certificate(splitPemCerts(minted.certPem)[0]!).raw;
    assert(!identity.isDistrusted(der));
    const distrusted = distrustIntermediate(after, oldId, Date.now());
    await identity.updateCa(distrusted);
    assert(identity.isDistrusted(der));
    assertEquals(heard, 1);
    await identity.updateCa(distrusted);
    assertEquals(heard, 1, "the same list again is no news");
    const fresh = await controlLeaf(after, "cp-3");
    assert(!identity.isDistrusted(new X509Certificate(splitPemCerts(fresh.certPem)[0]!).raw));
  } finally {
    identity.close();
  }
});
