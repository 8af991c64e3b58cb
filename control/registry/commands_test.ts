import assert from "node:assert/strict";
import {
  CommandDecodeError,
  decodeCommand,
  decodeCommittedCommand,
  encodeCommand,
  type RegistryCommand,
} from "./commands.ts";
import { InstanceSchema } from "./instance.ts";

const inst = InstanceSchema.parse({ id: "a1", service: "api", address: "10.0.0.1", port: 80 });

Deno.test("encodeCommand/decodeCommand round-trip every command type", () => {
  const cmds: RegistryCommand[] = [
    { type: "register_instance", instance: inst },
    { type: "deregister_instance", service: "api", id: "a1" },
    { type: "set_health", changes: [{ service: "api", id: "a1", health: "critical" }] },
    {
      type: "put_resource",
      items: [{ kind: "Policy", name: "api", resource: { kind: "Policy" } }],
    },
    { type: "delete_resource", kind: "Policy", name: "api" },
    { type: "rollback_resource", kind: "Policy", name: "api", revision: 2 },
  ];
  for (const c of cmds) assert.deepEqual(decodeCommand(encodeCommand(c)), c);
});

Deno.test("decodeCommand rejects malformed entries with the field path", () => {
  const enc = new TextEncoder();
  const cases: [string, string][] = [
    ["{", ""],
    ['{"type":"nope"}', "type"],
    ['{"type":"set_health","changes":[]}', "changes"],
    ['{"type":"deregister_instance","service":"api"}', "id"],
    ['{"type":"deregister_instance","service":"api","id":"x","extra":1}', ""],
    ['{"type":"rollback_resource","kind":"Policy","name":"a","revision":0}', "revision"],
    [
      '{"type":"register_instance","instance":{"id":"a","service":"b","address":"x","port":70000}}',
      "instance.port",
    ],
  ];
  for (const [text, path] of cases) {
    assert.throws(() => decodeCommand(enc.encode(text)), (e: unknown) => {
      assert.ok(e instanceof CommandDecodeError, text);
      assert.equal(e.path, path, text);
      return true;
    });
  }
  assert.throws(() => decodeCommand(new Uint8Array([0xff, 0xfe])), CommandDecodeError);
});

Deno.test("InstanceSchema fills the SPEC defaults", () => {
  assert.deepEqual(inst, {
    id: "a1",
    service: "api",
    node: "",
    address: "10.0.0.1",
    port: 80,
    zone: "",
    version: "",
    weight: 1,
    tags: [],
    capabilities: [],
    meta: {},
    health: "passing",
  });
});

Deno.test("decodeCommittedCommand equals decodeCommand on every valid command", () => {
  const full = InstanceSchema.parse({
    id: "a1",
    service: "api",
    address: "10.0.0.1",
    port: 80,
    tags: ["x"],
    meta: { v: "1" },
    health: "warning",
    weight: 0,
  });
  const cmds: RegistryCommand[] = [
    { type: "register_instance", instance: inst },
    { type: "register_instance", instance: full },
    { type: "deregister_instance", service: "api", id: "a1" },
    { type: "set_health", changes: [{ service: "api", id: "a1", health: "critical" }] },
    { type: "delete_resource", kind: "Policy", name: "api" },
  ];
  for (const c of cmds) {
    const bytes = encodeCommand(c);
    assert.deepEqual(decodeCommittedCommand(bytes), decodeCommand(bytes), c.type);
  }
});

Deno.test("decodeCommittedCommand refuses entries of the wrong shape and drops unknown keys", () => {
  const enc = new TextEncoder();
  const good = JSON.parse(new TextDecoder().decode(encodeCommand({
    type: "register_instance",
    instance: inst,
  }))) as { type: string; instance: Record<string, unknown> };
  const bad: unknown[] = [
    { ...good, instance: { ...good.instance, port: "80" } },
    { ...good, instance: { ...good.instance, port: 80.5 } },
    { ...good, instance: { ...good.instance, health: "dead" } },
    { ...good, instance: { ...good.instance, tags: [1] } },
    { ...good, instance: { ...good.instance, meta: { v: 1 } } },
    { ...good, instance: { ...good.instance, meta: ["x"] } },
    { ...good, instance: { ...good.instance, zone: undefined } },
    { ...good, instance: null },
    { type: "deregister_instance", service: "api" },
    // Rare kinds still get the full schema: an empty change list is refused.
    { type: "set_health", changes: [] },
    { type: "no_such_command" },
    null,
    [],
  ];
  for (const b of bad) {
    assert.throws(
      () => decodeCommittedCommand(enc.encode(JSON.stringify(b))),
      CommandDecodeError,
      JSON.stringify(b),
    );
  }
  assert.throws(() => decodeCommittedCommand(enc.encode("{")), CommandDecodeError);
  const extra = { ...good, instance: { ...good.instance, evil: "x" } };
  const got = decodeCommittedCommand(enc.encode(JSON.stringify(extra)));
  assert.deepEqual(got, { type: "register_instance", instance: inst }, "unknown key dropped");
});
