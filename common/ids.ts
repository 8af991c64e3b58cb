/**
 * Branded identifiers, so a node id is never passed where a service name is expected.
 * @module
 */

declare const _brand: unique symbol;
/** A value of type T that carries the compile-time tag B. */
export type Brand<T, B extends string> = T & { readonly [_brand]: B };

/** A control node's stable id (`node:` in control.yaml). */
export type NodeId = Brand<string, "NodeId">;
/** A service name as registered in the catalog. */
export type ServiceName = Brand<string, "ServiceName">;
/** An instance id, unique within its service. */
export type InstanceId = Brand<string, "InstanceId">;

/** Tags a string as a NodeId. */
export function nodeId(s: string): NodeId {
  return s as NodeId;
}
/** Tags a string as a ServiceName. */
export function serviceName(s: string): ServiceName {
  return s as ServiceName;
}
/** Tags a string as an InstanceId. */
export function instanceId(s: string): InstanceId {
  return s as InstanceId;
}
