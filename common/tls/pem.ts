/**
 * PEM armour, ECDSA P-256 keys and trust bundles: the formats the mesh CA issues in and every
 * certificate holder reads.
 * @module
 */
import { Buffer } from "node:buffer";

/** The one signature algorithm of the mesh CA and its leaves. */
export const EC_ALGORITHM = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;

/** Wraps DER bytes in PEM armour with 64-character lines. */
export function toPem(der: ArrayBuffer | Uint8Array, label: string): string {
  const b64 = Buffer.from(der instanceof Uint8Array ? der : new Uint8Array(der)).toString(
    "base64",
  );
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`;
}

/** Extracts the DER bytes of the first PEM block with `label`; throws when there is none. */
export function fromPem(pem: string, label: string): Uint8Array<ArrayBuffer> {
  const re = new RegExp(`-----BEGIN ${label}-----([A-Za-z0-9+/=\\s]+)-----END ${label}-----`);
  const m = re.exec(pem);
  if (!m) throw new TypeError(`no PEM block "${label}" found`);
  return new Uint8Array(Buffer.from(m[1]!.replace(/\s+/g, ""), "base64"));
}

/** Splits a PEM bundle into its certificate blocks. */
export function splitPemCerts(bundle: string): string[] {
  return bundle.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----\n?/g)?.map(
    (b) => b.endsWith("\n") ? b : b + "\n",
  ) ?? [];
}

/** Generates an extractable ECDSA P-256 key pair. */
export async function generateEcKeyPair(): Promise<CryptoKeyPair> {
  return await crypto.subtle.generateKey(EC_ALGORITHM, true, ["sign", "verify"]);
}

/** Exports a private key as PKCS#8 PEM. */
export async function exportPrivateKeyPem(key: CryptoKey): Promise<string> {
  return toPem(await crypto.subtle.exportKey("pkcs8", key), "PRIVATE KEY");
}

/** Imports a PKCS#8 PEM ECDSA P-256 private key for signing. */
export async function importPrivateKeyPem(pem: string): Promise<CryptoKey> {
  const der = fromPem(pem, "PRIVATE KEY");
  return await crypto.subtle.importKey("pkcs8", der, EC_ALGORITHM, false, ["sign"]);
}

/**
 * Whether a new trust bundle may replace the current one. A CA rotation always overlaps (the
 * old and the new root are trusted together), so a bundle that keeps none of today's roots is
 * not a rotation and is refused; an empty current set (nothing trusted yet) accepts anything.
 */
export function keepsATrustedRoot(current: ReadonlySet<string>, next: readonly string[]): boolean {
  return current.size === 0 || next.some((r) => current.has(r));
}
