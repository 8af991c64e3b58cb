import { assert, assertEquals, assertRejects } from "../../tests/assert.ts";
import { opReadAvailable, readerFor, readsDirectly } from "./direct_read.ts";

/** A connected TCP pair on loopback. */
async function tcpPair(): Promise<{ a: Deno.TcpConn; b: Deno.TcpConn; close(): void }> {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const [a, b] = await Promise.all([
    Deno.connect({ hostname: "127.0.0.1", port: l.addr.port }),
    l.accept() as Promise<Deno.TcpConn>,
  ]);
  l.close();
  return {
    a,
    b,
    close() {
      for (const c of [a, b]) {
        try {
          c.close();
        } catch {
          // Closed by the test already.
        }
      }
    },
  };
}

Deno.test("readerFor reads Deno's TCP connections through the read op in this Deno", async () => {
  // If a Deno upgrade moves these internals this fails: the proxy would then silently use the
  // slower conn.read (still correct, see the fallback tests below).
  assert(opReadAvailable(), "Deno[Deno.internal].core.read is missing");
  const p = await tcpPair();
  try {
    assert(readsDirectly(p.a) && readsDirectly(p.b));
    const read = readerFor(p.b);
    await p.a.write(new TextEncoder().encode("hello"));
    const buf = new Uint8Array(64);
    let got = "";
    while (got.length < 5) {
      const n = await read(buf);
      assert(n !== null && n > 0);
      got += new TextDecoder().decode(buf.subarray(0, n));
    }
    assertEquals(got, "hello");
    // End of stream: the op resolves to 0 where conn.read gives null; callers test `!n`.
    p.a.closeWrite();
    assert(!(await read(buf)));
  } finally {
    p.close();
  }
});

Deno.test("a direct reader fails once its connection is closed, with nothing read", async () => {
  const p = await tcpPair();
  try {
    const read = readerFor(p.b);
    const pending = read(new Uint8Array(16));
    p.b.close();
    // A read in flight at close ends (rejected or at end of stream) instead of hanging.
    const r = await pending.then((n) => ({ n }), (e) => ({ e }));
    assert("e" in r || !r.n, `a closed connection delivered ${JSON.stringify(r)}`);
    // Later reads are refused: the resource is gone.
    await assertRejects(() => read(new Uint8Array(16)), Error);
  } finally {
    p.close();
  }
});

Deno.test("anything that is not Deno's own connection is read through its read method", async () => {
  const calls: number[] = [];
  const fake = {
    read(p: Uint8Array): Promise<number | null> {
      calls.push(p.length);
      p[0] = 42;
      return Promise.resolve(1);
    },
  } as unknown as Deno.Conn;
  assert(!readsDirectly(fake));
  const buf = new Uint8Array(8);
  assertEquals(await readerFor(fake)(buf), 1);
  assertEquals(buf[0], 42);
  assertEquals(calls, [8]);
});

Deno.test("SKEIN_OP_READ=off turns direct reads off", async () => {
  const url = new URL("./direct_read.ts", import.meta.url).href;
  const script = `import { opReadAvailable } from ${JSON.stringify(url)};
    const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const c = await Deno.connect({ hostname: "127.0.0.1", port: l.addr.port });
    const { readsDirectly } = await import(${JSON.stringify(url)});
    console.log(JSON.stringify([opReadAvailable(), readsDirectly(c)]));
    c.close(); l.close();`;
  const run = async (env: Record<string, string>) => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["eval", script],
      env,
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert(out.success, new TextDecoder().decode(out.stderr));
    return JSON.parse(new TextDecoder().decode(out.stdout));
  };
  assertEquals(await run({ SKEIN_OP_READ: "off" }), [false, false]);
  assertEquals(await run({ SKEIN_OP_READ: "on" }), [true, true]);
});
