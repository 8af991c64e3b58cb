import assert from "node:assert/strict";
import {
  CommandDecodeError,
  decodeCommand,
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
