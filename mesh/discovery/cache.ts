/**
 * The last-known catalog on disk, so a proxy keeps routing when no control node answers, also
 * across its own restart. Writes are atomic and durable (`common/atomic_write.ts`): a crash or
 * power cut leaves either the old or the new catalog, never half of one.
 * @module
 */
import { type Catalog, CatalogSchema } from "./catalog.ts";
import { writeFileAtomic } from "../../common/atomic_write.ts";

/** File name of the cached catalog inside `data_dir`. */
export const CATALOG_CACHE_FILE = "catalog.json";
/** Largest cached catalog read back, in bytes; a bigger file is treated as corrupt. */
export const MAX_CATALOG_CACHE_BYTES = 64 * 1024 * 1024;

/** Why a cache could not be read. */
export class CatalogCacheError extends Error {
  override readonly name = "CatalogCacheError";
  /** Creates the error for `path`. */
  constructor(readonly path: string, why: string) {
    super(`cached catalog ${path} is unusable: ${why}`);
  }
}

/** Writes `catalog` to `dir/catalog.json` atomically; creates `dir` when missing. */
export async function saveCatalog(dir: string, catalog: Catalog): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  const path = `${dir}/${CATALOG_CACHE_FILE}`;
  const bytes = new TextEncoder().encode(JSON.stringify({ saved_at: Date.now(), catalog }));
  await writeFileAtomic(path, bytes, { mode: 0o600 });
}

/** Reads the cached catalog; null when there is none, {@linkcode CatalogCacheError} if corrupt. */
export async function loadCatalog(dir: string): Promise<Catalog | null> {
  const path = `${dir}/${CATALOG_CACHE_FILE}`;
  let bytes: Uint8Array;
  try {
    const st = await Deno.stat(path);
    if (st.size > MAX_CATALOG_CACHE_BYTES) {
      throw new CatalogCacheError(path, `${st.size} bytes, over ${MAX_CATALOG_CACHE_BYTES}`);
    }
    bytes = await Deno.readFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
  let raw: unknown;
  try {
    raw = JSON.parse(new TextDecoder().decode(bytes));
  } catch (e) {
    throw new CatalogCacheError(path, `not JSON (${(e as Error).message})`);
  }
  const r = CatalogSchema.safeParse((raw as { catalog?: unknown } | null)?.catalog);
  if (!r.success) {
    const i = r.error.issues[0];
    throw new CatalogCacheError(path, `${i?.path.join(".") ?? ""}: ${i?.message ?? "invalid"}`);
  }
  return r.data;
}
