/**
 * Echo throughput over plain TCP vs mutual TLS on this machine (not a test: run it by hand).
 *
 *   deno run -A tests/security/tls_echo_bench.ts [seconds=3] [connections=32]
 *
 * Ping-pong of 200-byte messages over `connections` concurrent connections (client and
 * server in one process, as a rough stand-in for one proxy hop), then a bulk stream.
 * @module
 */
import net from "node:net";

import { trustBundlePem } from "../../control/ca/mod.ts";
import { createMtlsServer, mtlsConnect } from "../../common/tls/mod.ts";
import { leaf, testCa } from "./_pki.ts";

const SECONDS = Number(Deno.args[0] ?? 3);
const CONNS = Number(Deno.args[1] ?? 32);
const MSG = new Uint8Array(200).fill(97);
const BULK = new Uint8Array(64 * 1024).fill(98);

type Duplex = {
  write(b: Uint8Array): unknown;
  on(e: "data", f: (d: Uint8Array) => void): unknown;
  destroy(): void;
};

async function pingPong(open: () => Promise<Duplex>): Promise<number> {
  const socks = await Promise.all(Array.from({ length: CONNS }, open));
  let n = 0;
  const end = Date.now() + SECONDS * 1000;
  await Promise.all(socks.map((s) =>
    new Promise<void>((resolve) => {
      let got = 0;
      s.on("data", (d) => {
        got += d.length;
        if (got < MSG.length) return;
        got -= MSG.length;
        n++;
        if (Date.now() < end) s.write(MSG);
        else resolve();
      });
      s.write(MSG);
    })
  ));
  for (const s of socks) s.destroy();
  return n / SECONDS;
}

async function bulk(open: () => Promise<Duplex>): Promise<number> {
  const s = await open();
  let bytes = 0;
  const end = Date.now() + SECONDS * 1000;
  await new Promise<void>((resolve) => {
    let inflight = 0;
    const pump = () => {
      while (inflight < 8 * BULK.length && Date.now() < end) {
        inflight += BULK.length;
        s.write(BULK);
      }
      if (Date.now() >= end && inflight === 0) resolve();
    };
    s.on("data", (d) => {
      bytes += d.length;
      inflight -= d.length;
      pump();
    });
    pump();
  });
  s.destroy();
  return bytes / SECONDS / 1e6;
}

const echo = (s: net.Socket) => {
  s.on("data", (d: Uint8Array) => s.write(d));
  s.on("error", () => {});
};

const plain = net.createServer(echo);
await new Promise<void>((r) => plain.listen(0, "127.0.0.1", r));
const plainPort = (plain.address() as net.AddressInfo).port;
const openPlain = () =>
  new Promise<Duplex>((r) => {
    const s: net.Socket = net.connect(plainPort, "127.0.0.1", () => r(s));
    s.setNoDelay(true);
  });

const ca = await testCa();
const sl = await leaf(ca, "ledger");
const cl = await leaf(ca, "payments");
const srv = createMtlsServer({
  cert: sl.certPem,
  key: sl.keyPem,
  ca: trustBundlePem(ca),
  maxConcurrentHandshakes: 1024,
  onConnection: (s) => {
    s.setNoDelay(true);
    echo(s as unknown as net.Socket);
  },
});
const { port: tlsPort } = await srv.listen(0, "127.0.0.1");
const openTls = async () => {
  const s = await mtlsConnect({
    host: "127.0.0.1",
    port: tlsPort,
    cert: cl.certPem,
    key: cl.keyPem,
    ca: trustBundlePem(ca),
    expectSpiffe: "spiffe://skein.local/svc/ledger",
  });
  s.setNoDelay(true);
  return s as unknown as Duplex;
};

// Handshakes per second, sequential (each a full mTLS 1.3 handshake with P-256).
const hsEnd = Date.now() + SECONDS * 1000;
let hs = 0;
while (Date.now() < hsEnd) {
  (await openTls()).destroy();
  hs++;
}

/** Adapts a Deno.Conn to the tiny Duplex shape the loops use. */
function denoDuplex(c: Deno.Conn): Duplex {
  let onData: ((d: Uint8Array) => void) | undefined;
  let closed = false;
  (async () => {
    const buf = new Uint8Array(64 * 1024);
    try {
      for (;;) {
        const n = await c.read(buf);
        if (n === null) break;
        onData?.(buf.subarray(0, n));
      }
    } catch { /* closed */ }
  })();
  let chain = Promise.resolve();
  return {
    write(b: Uint8Array) {
      const copy = b.slice();
      chain = chain.then(async () => {
        let o = 0;
        while (o < copy.length && !closed) o += await c.write(copy.subarray(o));
      }).catch(() => {});
    },
    on(_e: "data", f: (d: Uint8Array) => void) {
      onData = f;
    },
    destroy() {
      closed = true;
      try {
        c.close();
      } catch { /* already closed */ }
    },
  };
}

// Reference: Deno's own sockets on both ends, plain.
const dl = Deno.listen({ hostname: "127.0.0.1", port: 0 });
(async () => {
  for await (const c of dl) {
    (async () => {
      const buf = new Uint8Array(64 * 1024);
      try {
        for (;;) {
          const n = await c.read(buf);
          if (n === null) break;
          let o = 0;
          while (o < n) o += await c.write(buf.subarray(o, n));
        }
      } catch { /* closed */ }
      try {
        c.close();
      } catch { /* closed */ }
    })();
  }
})();
const openDenoPlain = async () => {
  const c = await Deno.connect({ hostname: "127.0.0.1", port: dl.addr.port });
  c.setNoDelay(true);
  return denoDuplex(c);
};
// Deno.connectTls with a client certificate against the node:tls mTLS server. It verifies the
// chain but cannot see the server's SPIFFE id (no peer certificate API), hence not used by
// mtlsConnect; measured because the data plane is built on Deno.Conn.
const openDenoTls = async () => {
  const c = await Deno.connectTls({
    hostname: "127.0.0.1",
    port: tlsPort,
    caCerts: [trustBundlePem(ca)],
    cert: cl.certPem,
    key: cl.keyPem,
    unsafelyDisableHostnameVerification: true,
  });
  await c.handshake();
  return denoDuplex(c);
};

const rows = [
  ["plain TCP (node:net)", await pingPong(openPlain), await bulk(openPlain)],
  ["plain TCP (Deno.Conn)", await pingPong(openDenoPlain), await bulk(openDenoPlain)],
  ["mTLS 1.3 (node:tls)", await pingPong(openTls), await bulk(openTls)],
  ["mTLS (Deno.connectTls->node:tls)", await pingPong(openDenoTls), await bulk(openDenoTls)],
] as const;
console.log(`echo, ${CONNS} connections, ${SECONDS}s each, 200-byte ping-pong; bulk 64 KiB writes`);
for (const [name, rps, mbs] of rows) {
  console.log(
    `${name.padEnd(34)} ${Math.round(rps).toString().padStart(8)} round trips/s  ${
      mbs.toFixed(0).padStart(6)
    } MB/s`,
  );
}
console.log(`mTLS handshakes (sequential): ${Math.round(hs / SECONDS)}/s`);
plain.close();
dl.close();
await srv.close({ destroyConnections: true });
