/**
 * The instance record of the catalog (SPEC section 2) and the schema of a registration body.
 * @module
 */
import { z } from "zod";
import {
  instanceAddress,
  instanceLabels,
  instanceMeta,
  MAX_INSTANCE_VERSION_CHARS,
  registryString,
} from "../../config/registry_limits.ts";

/** Longest service name, instance id, node or zone accepted. */
export const MAX_NAME_LENGTH = 128;
/** Most tags or capabilities a stored instance may carry (registrations: `config/registry_limits.ts`). */
export const MAX_LABELS = 64;
/** Most `meta` entries one instance may carry. */
export const MAX_META_ENTRIES = 64;
/** Longest tag, capability or meta value. */
export const MAX_LABEL_LENGTH = 256;
/** Largest load-balancing weight; 0 drains an instance without removing it. */
export const MAX_WEIGHT = 10_000;

/** Health of an instance as the catalog records it. */
export const HealthSchema = z.enum(["passing", "warning", "critical"]);
/** Health of an instance as the catalog records it. */
export type Health = z.infer<typeof HealthSchema>;
/** All health values, in display order. */
export const HEALTH_VALUES: readonly Health[] = HealthSchema.options;

/** A service name or instance id: DNS-label-like so it is safe in paths, SPIFFE ids and logs. */
export const NameSchema = z
  .string()
  .min(1)
  .max(MAX_NAME_LENGTH)
  .regex(
    // Same alphabet as node and resource names in config/, so any valid resource name fits.
    /^[A-Za-z0-9][A-Za-z0-9._-]*$/,
    "expected letters, digits, '.', '_' or '-', starting with a letter or digit",
  );

const _label = z.string().max(MAX_LABEL_LENGTH);

/** The fields of an instance besides its identity, with the SPEC's defaults. */
const _instanceFields = {
  node: z.string().max(MAX_NAME_LENGTH).default(""),
  address: z.string().min(1).max(253),
  port: z.number().int().min(1).max(65535),
  zone: z.string().max(MAX_NAME_LENGTH).default(""),
  version: z.string().max(MAX_NAME_LENGTH).default(""),
  weight: z.number().int().min(0).max(MAX_WEIGHT).default(1),
  tags: z.array(_label).max(MAX_LABELS).default([]),
  capabilities: z.array(_label).max(MAX_LABELS).default([]),
  meta: z.record(z.string().max(MAX_NAME_LENGTH), _label)
    .refine((m) => Object.keys(m).length <= MAX_META_ENTRIES, {
      message: `at most ${MAX_META_ENTRIES} meta entries`,
    })
    .default({}),
  health: HealthSchema.default("passing"),
};

/**
 * The same fields as the API accepts them from now on: tighter than what the log and snapshots
 * may already hold (those keep the fields above, so no stored instance stops decoding), with
 * addresses as IPs or host names and no control characters anywhere (see
 * `config/registry_limits.ts`).
 */
const _registrationFields = {
  ..._instanceFields,
  node: registryString(MAX_NAME_LENGTH).default(""),
  address: instanceAddress,
  zone: registryString(MAX_NAME_LENGTH).default(""),
  version: registryString(MAX_INSTANCE_VERSION_CHARS).default(""),
  tags: instanceLabels.default([]),
  capabilities: instanceLabels.default([]),
  meta: instanceMeta.default({}),
};

/** A complete instance as stored in the catalog. */
export const InstanceSchema = z.strictObject({
  id: NameSchema,
  service: NameSchema,
  ..._instanceFields,
});
/** A complete instance as stored in the catalog. */
export type Instance = z.infer<typeof InstanceSchema>;

/**
 * The body of `PUT /v1/services/:name/instances/:id`: only `address` and `port` are required.
 * `id` and `service` may be repeated in the body (so a fetched instance can be sent back) but
 * must then match the path.
 */
export const RegistrationSchema = z.strictObject({
  id: NameSchema.optional(),
  service: NameSchema.optional(),
  ..._registrationFields,
});
/** A registration body after defaults are filled in. */
export type Registration = z.infer<typeof RegistrationSchema>;
