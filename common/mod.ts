/**
 * The small common module that `control/` and `mesh/` may both import: logging and ids.
 * @module
 */
export * from "./log.ts";
export * from "./ids.ts";
export * from "./metrics.ts";
export * from "./sleep.ts";
