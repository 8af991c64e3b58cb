/**
 * A gRPC service for the process tests, defined by hand (no .proto): strings as UTF-8 bytes.
 * `test.Echo` has Unary, Stream (server-streaming, five messages), Flaky (UNAVAILABLE while
 * the instance is told to fail), Slow (answers after a delay) and Fail (INTERNAL).
 * @module
 */
import { Buffer } from "node:buffer";
import * as grpc from "npm:@grpc/grpc-js@1.14.7";

export { grpc };

const _ser = (s: string) => Buffer.from(s, "utf8");
const _de = (b: Buffer) => b.toString("utf8");

function _method(name: string, responseStream = false, requestStream = false) {
  return {
    path: `/test.Echo/${name}`,
    requestStream,
    responseStream,
    requestSerialize: _ser,
    requestDeserialize: _de,
    responseSerialize: _ser,
    responseDeserialize: _de,
  };
}

/** The service definition both servers and clients use. */
export const ECHO_SERVICE = {
  Unary: _method("Unary"),
  Stream: _method("Stream", true),
  Flaky: _method("Flaky"),
  Slow: _method("Slow"),
  Fail: _method("Fail"),
  Chat: _method("Chat", true, true),
};

/** A running gRPC instance and what reached it. */
export interface GrpcApp {
  port: number;
  /** Calls that reached it, by method name. */
  hits: Record<string, number>;
  /** While true, Flaky answers UNAVAILABLE. */
  flakyFails: boolean;
  /** The deadline the last Slow call carried (ms from when it arrived), if any. */
  slowDeadlineMs: number | null;
  close(): Promise<void>;
}

/** Starts an instance named `name` on 127.0.0.1 (h2c, as `protocol: grpc` apps are reached). */
export async function startGrpcApp(name: string): Promise<GrpcApp> {
  const app: GrpcApp = {
    port: 0,
    hits: {},
    flakyFails: false,
    slowDeadlineMs: null,
    close: async () => {},
  };
  const count = (m: string) => app.hits[m] = (app.hits[m] ?? 0) + 1;
  type Unary = grpc.ServerUnaryCall<string, string>;
  type Cb = grpc.sendUnaryData<string>;
  const server = new grpc.Server();
  server.addService(ECHO_SERVICE as unknown as grpc.ServiceDefinition, {
    Unary: (call: Unary, cb: Cb) => {
      count("Unary");
      cb(null, `${name}:${call.request}`);
    },
    Stream: (call: grpc.ServerWritableStream<string, string>) => {
      count("Stream");
      for (let i = 0; i < 5; i++) call.write(`${name}:${call.request}:${i}`);
      call.end();
    },
    Flaky: (call: Unary, cb: Cb) => {
      count("Flaky");
      if (app.flakyFails) cb({ code: grpc.status.UNAVAILABLE, details: `${name} is unavailable` });
      else cb(null, `${name}:${call.request}`);
    },
    Slow: (call: Unary, cb: Cb) => {
      count("Slow");
      const d = call.getDeadline();
      const at = d instanceof Date ? d.getTime() : d;
      app.slowDeadlineMs = Number.isFinite(at) ? at - Date.now() : null;
      const t = setTimeout(() => cb(null, "late"), 3000);
      call.on("cancelled", () => clearTimeout(t));
    },
    Chat: (call: grpc.ServerDuplexStream<string, string>) => {
      count("Chat");
      call.on("data", (m: string) => call.write(`${name}:${m}`));
      call.on("end", () => call.end());
    },
    Fail: (_call: Unary, cb: Cb) => {
      count("Fail");
      cb({ code: grpc.status.INTERNAL, details: "broken on purpose" });
    },
  });
  app.port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(
      "127.0.0.1:0",
      grpc.ServerCredentials.createInsecure(),
      (e, port) => e ? reject(e) : resolve(port),
    )
  );
  app.close = () => new Promise<void>((r) => server.tryShutdown(() => r()));
  return app;
}

/** A client of `test.Echo` at `addr` (one channel, h2c), with the client's own retries off. */
export function echoClient(
  addr: string,
): grpc.Client & Record<string, grpc.MethodDefinition<string, string>> {
  const Ctor = grpc.makeGenericClientConstructor(
    ECHO_SERVICE as unknown as grpc.ServiceDefinition,
    "Echo",
  );
  return new Ctor(addr, grpc.credentials.createInsecure(), {
    "grpc.enable_retries": 0,
  }) as unknown as grpc.Client & Record<string, grpc.MethodDefinition<string, string>>;
}

/** Calls a unary method; resolves with the reply or the error status. */
export function unary(
  c: unknown,
  method: string,
  req: string,
  deadlineMs?: number,
): Promise<{ reply: string | null; error: grpc.ServiceError | null }> {
  const fn = (c as Record<string, (...a: unknown[]) => unknown>)[method]!.bind(c);
  const opts = deadlineMs === undefined ? {} : { deadline: new Date(Date.now() + deadlineMs) };
  return new Promise((resolve) => {
    fn(req, new grpc.Metadata(), opts, (error: grpc.ServiceError | null, reply: string) => {
      resolve({ reply: error ? null : reply, error });
    });
  });
}

/** Calls Stream; resolves with the messages and the final status code. */
export function serverStream(
  c: unknown,
  req: string,
): Promise<{ messages: string[]; code: number }> {
  const fn =
    (c as Record<string, (...a: unknown[]) => grpc.ClientReadableStream<string>>)["Stream"]!
      .bind(c);
  return new Promise((resolve) => {
    const messages: string[] = [];
    const call = fn(req);
    call.on("data", (m: string) => messages.push(m));
    call.on("error", () => {});
    call.on("status", (s: grpc.StatusObject) => resolve({ messages, code: s.code }));
  });
}

/**
 * A bidirectional call that sends each of `messages` only after the echo of the one before
 * came back: it can finish only if both directions stream through the proxies as they go.
 */
export async function chat(c: unknown, messages: string[]): Promise<string[]> {
  const fn = (c as Record<string, () => grpc.ClientDuplexStream<string, string>>)["Chat"]!.bind(c);
  const call = fn();
  const got: string[] = [];
  let waiter: (() => void) | null = null;
  call.on("data", (m: string) => {
    got.push(m);
    waiter?.();
  });
  call.on("error", () => {});
  for (const m of messages) {
    const n = got.length;
    call.write(m);
    // Bounded: a proxy that held the stream back would otherwise hang the test.
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no echo of ${m} in 20 s`)), 20_000);
      waiter = () => {
        if (got.length > n) {
          clearTimeout(t);
          resolve();
        }
      };
      waiter();
    });
  }
  call.end();
  await new Promise((r) => call.on("status", r));
  return got;
}
