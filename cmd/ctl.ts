/**
 * `skein ctl`: the operator CLI; the verbs live in `cmd/ctl/`.
 * @module
 */
export * from "./ctl/mod.ts";
