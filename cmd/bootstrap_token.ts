/**
 * The bootstrap admin token: generated at first start and written 0600 when the file is absent.
 * @module
 */
import type { Logger } from "../common/log.ts";

/** Prefix of skein tokens; the log redactor recognises it. */
export const TOKEN_PREFIX = "skn_";

/**
 * Shortest hand-written bootstrap token taken without a warning. Listings and audit lines show
 * a token's id, `boot-` and 16 hex digits of its SHA-256, so a guessable token can be tested
 * offline by anyone who sees one; a generated token (47 characters, 256 random bits) cannot.
 */
export const MIN_QUIET_TOKEN_LENGTH = 32;

/** Generates a new random token (256 bits, base64url). */
export function generateToken(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  const b64 = btoa(String.fromCharCode(...bytes)).replaceAll("+", "-").replaceAll("/", "_")
    .replaceAll("=", "");
  return TOKEN_PREFIX + b64;
}

/** Reads the token file, creating it with a fresh token (mode 0600) when it does not exist. */
export async function ensureBootstrapToken(path: string, log: Logger): Promise<string> {
  try {
    const text = (await Deno.readTextFile(path)).trim();
    if (text.length < 16) {
      throw new Error(`${path}: token is too short (${text.length} characters)`);
    }
    if (text.length < MIN_QUIET_TOKEN_LENGTH) {
      log.warn(
        "bootstrap admin token is short: its id in listings and audit lines lets anyone who " +
          "sees one test guesses offline; delete the file to have a random one generated",
        { file: path, characters: text.length, recommended: MIN_QUIET_TOKEN_LENGTH },
      );
    }
    return text;
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  const token = generateToken();
  const dir = path.slice(0, path.lastIndexOf("/"));
  if (dir) await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  // createNew refuses to clobber a file another node or operator created meanwhile; that
  // file's token is then the cluster's (nodes started together on one host share the file).
  try {
    await Deno.writeTextFile(path, token + "\n", { mode: 0o600, createNew: true });
  } catch (e) {
    if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
    return await _readWritten(path);
  }
  await Deno.chmod(path, 0o600);
  log.info("wrote a new bootstrap admin token", { file: path });
  return token;
}

/** Attempts to read a token another process is writing at this moment. */
const _RACE_READ_ATTEMPTS = 50;

async function _readWritten(path: string): Promise<string> {
  // The winner created the file before writing into it, so it may still be empty for a moment.
  for (let i = 0; i < _RACE_READ_ATTEMPTS; i++) {
    const text = (await Deno.readTextFile(path)).trim();
    if (text.length >= 16) return text;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`${path}: token file exists but holds no valid token`);
}
