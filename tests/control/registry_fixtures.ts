/**
 * Small builders the registry's unit tests share: an instance, its registration command and a
 * policy resource.
 * @module
 */
import { type Instance, InstanceSchema } from "../../control/registry/instance.ts";
import type { RegistryCommand } from "../../control/registry/commands.ts";

/** A valid instance of `service` with id `id` at 10.0.0.1:8080, overridden by `extra`. */
export function inst(service: string, id: string, extra: Partial<Instance> = {}): Instance {
  return InstanceSchema.parse({ service, id, address: "10.0.0.1", port: 8080, ...extra });
}

/** The `register_instance` command for `i`. */
export const reg = (i: Instance): RegistryCommand => ({ type: "register_instance", instance: i });

/** A stored Policy resource for `service` with the given timeout. */
export const policy = (service: string, timeout: string) => ({
  kind: "Policy",
  name: service,
  resource: { kind: "Policy", service, timeout },
});
