/**
 * The proxy's HTTPS client for the control API: trusts the mesh CA bundle and presents the
 * proxy's certificate once it has one.
 *
 * The server is checked by host name or IP against the control node's certificate. Only control
 * certificates carry DNS/IP names (the CA takes SANs from the caller's identity, never from a
 * CSR), so a proxy certificate cannot pose as a control node.
 * @module
 */
import type { TlsMaterial } from "../../common/tls.ts";
import { splitPemCerts } from "../../common/tls.ts";

/** How long a replaced client stays open for calls still running on it (blocking queries). */
export const OLD_CLIENT_GRACE_MS = 120_000;

/** Largest CA file read, in bytes. */
export const MAX_CA_FILE_BYTES = 256 * 1024;

/** Thrown when the CA file cannot be used. */
export class ControlTrustError extends Error {
  override readonly name = "ControlTrustError";
}

/** Reads a PEM bundle of CA certificates; null when the file does not exist. */
export async function readCaBundle(path: string): Promise<string[] | null> {
  let text: string;
  try {
    const st = await Deno.stat(path);
    if (st.size > MAX_CA_FILE_BYTES) {
      throw new ControlTrustError(`CA file ${path} is ${st.size} bytes, over ${MAX_CA_FILE_BYTES}`);
    }
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
  const certs = splitPemCerts(text);
  if (certs.length === 0) {
    throw new ControlTrustError(`CA file ${path} holds no PEM certificate`);
  }
  return certs;
}

/** A `fetch` for the control API whose trust and client certificate can change at runtime. */
export class ControlHttp {
  #client: Deno.HttpClient | null;
  #roots: string[];
  #material: TlsMaterial | null;
  readonly #timers = new Set<ReturnType<typeof setTimeout>>();

  /** Creates the client; `roots` empty means plain `fetch` (http:// control URLs only). */
  constructor(roots: readonly string[], material: TlsMaterial | null = null) {
    this.#roots = [...roots];
    this.#material = material;
    this.#client = this.#build();
  }

  /** The fetch to hand to discovery and enrolment. */
  readonly fetch: typeof fetch = (input, init) =>
    this.#client ? fetch(input, { ...init, client: this.#client }) : fetch(input, init);

  /** Presents `material`'s certificate from now on (after enrolment or renewal). */
  setMaterial(material: TlsMaterial): void {
    this.#material = material;
    this.#replace();
  }

  /** Trusts exactly `roots` from now on (CA rotation); ignored when empty. True if changed. */
  setRoots(roots: readonly string[]): boolean {
    if (roots.length === 0) return false;
    if (roots.length === this.#roots.length && roots.every((r, i) => r === this.#roots[i])) {
      return false;
    }
    this.#roots = [...roots];
    this.#replace();
    return true;
  }

  /** Closes every client. */
  close(): void {
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    this.#client?.close();
    this.#client = null;
  }

  #build(): Deno.HttpClient | null {
    if (this.#roots.length === 0) return null;
    const m = this.#material;
    return m
      ? Deno.createHttpClient({ caCerts: this.#roots, cert: m.certPem, key: m.keyPem })
      : Deno.createHttpClient({ caCerts: this.#roots });
  }

  #replace(): void {
    const old = this.#client;
    this.#client = this.#build();
    if (!old) return;
    // A blocking catalog query may still be running on the old client; let it finish.
    const t = setTimeout(() => {
      this.#timers.delete(t);
      old.close();
    }, OLD_CLIENT_GRACE_MS);
    Deno.unrefTimer(t as unknown as number);
    this.#timers.add(t);
  }
}

/**
 * Whether a new trust bundle may replace the current one. A CA rotation always overlaps (the
 * old and the new root are trusted together), so a bundle that keeps none of today's roots is
 * not a rotation and is refused; an empty current set (nothing trusted yet) accepts anything.
 */
export function keepsATrustedRoot(current: ReadonlySet<string>, next: readonly string[]): boolean {
  return current.size === 0 || next.some((r) => current.has(r));
}
