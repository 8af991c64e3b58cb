/**
 * Bounds on resource fields that both the schema (which refuses values above them) and the
 * data plane (which clamps older stored values) read; no zod here, so workers can import it.
 * @module
 */

/** The longest `fault.delay.fixed` of a Route: a longer wait only holds connections. */
export const MAX_FAULT_DELAY_MS = 60_000;
