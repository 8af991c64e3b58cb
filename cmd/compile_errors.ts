/**
 * Explains a failed `deno compile`: without internet access it fails with a chain of DNS
 * errors; the user needs one line saying what is missing and where to build instead.
 * @module
 */

/** Whether `deno compile`'s stderr says it could not download the Deno runtime for a target. */
export function isRuntimeDownloadFailure(stderr: string): boolean {
  return /dl\.deno\.land|error sending request for url|dns error|failed to lookup address/i
    .test(stderr);
}

/** The one line printed instead of the backtraces when the runtime download failed. */
export function runtimeDownloadHint(target: string): string {
  return `compile: building ${target} needs the Deno runtime for that target, downloaded from ` +
    `dl.deno.land, and this machine cannot reach it. Build on a machine with internet access ` +
    `(git clone, then \`deno task compile\`) and copy dist/ here, or run from source with ` +
    `\`deno task skein\`.`;
}
