/**
 * Build facts baked into release executables; `cmd/compile.ts` rewrites this file while it builds.
 * @module
 */

/** The git commit a release was built from, or null when running from source. */
export const BUILD_COMMIT: string | null = null;
