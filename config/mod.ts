/**
 * Configuration: zod schemas for control.yaml, proxy.yaml and resources, the YAML loader with
 * file:line:col errors, and unit parsing. Imports nothing else of skein's.
 * @module
 */
export * from "./units.ts";
export * from "./address.ts";
export * from "./suggest.ts";
export { duration, host, hostPort, name, size, url } from "./fields.ts";
export * from "./control_schema.ts";
export * from "./proxy_schema.ts";
export * from "./proxy_reload.ts";
export * from "./capability_key.ts";
export * from "./resource_schema.ts";
export * from "./loader.ts";
export * from "./unenforced.ts";
export * from "./registry_limits.ts";
export * from "./yaml_syntax.ts";
