/**
 * `skein proxy --check` and `skein control --check`: the local half of `skein ctl check`, run on
 * the machine before (or instead of) starting the daemon: the configuration as the daemon would
 * load it, its files and their permissions, free ports, a writable data_dir, and whether the
 * control plane (or the Raft peers) can be reached. One line per problem with its fix.
 * @module
 */
import { ControlConfig, formatHostPort, ProxyConfig } from "../config/mod.ts";
import { ControlHttp, readCaBundle } from "../common/tls/control_https.ts";
import { type CommandIo, EXIT } from "./cli/io.ts";
import { loadModeConfig } from "./load_config.ts";
import { type CertFiles, loadCert } from "../mesh/ingress/mod.ts";
import { type SeedPaths, seedPaths } from "./seed_paths.ts";

/** How long each reachability probe may take, in ms. */
export const LOCAL_CHECK_TIMEOUT_MS = 3_000;

/** One result line. */
export interface LocalFinding {
  ok: boolean;
  what: string;
  fix?: string;
}

/** Whether `path` can be read; a finding either way. */
async function _readable(label: string, path: string, secret: boolean): Promise<LocalFinding> {
  try {
    const st = await Deno.stat(path);
    const f = await Deno.open(path, { read: true });
    f.close();
    if (secret && st.mode !== null && (st.mode & 0o077) !== 0) {
      return {
        ok: false,
        what: `${label} ${path} is readable by group or others (mode ${
          (st.mode & 0o777).toString(8)
        })`,
        fix: `chmod 600 ${path}`,
      };
    }
    return { ok: true, what: `${label} ${path} is readable` };
  } catch (e) {
    return {
      ok: false,
      what: `${label} ${path} cannot be read: ${(e as Error).message}`,
      fix: e instanceof Deno.errors.NotFound
        ? `create it (or point ${label} at the right file)`
        : `give the user that runs skein read access to ${path}`,
    };
  }
}

/** Whether an ingress certificate and key can be served (read, parsed, matching). */
async function _ingressCert(i: number, c: CertFiles): Promise<LocalFinding> {
  try {
    const got = await loadCert(c);
    return {
      ok: true,
      what: `ingress[${i}] certificate ${c.cert_file} (${got.subject}, until ${got.notAfter})`,
    };
  } catch (e) {
    return {
      ok: false,
      what: `ingress[${i}] certificate cannot be served: ${(e as Error).message}`,
      fix: "point cert_file and key_file at a PEM certificate and its own key",
    };
  }
}

/**
 * The seed files: the root certificate and key, or with an offline root (an intermediate file
 * exists) the root certificate, the intermediate pair, and no root key.
 */
async function _seedFindings(p: SeedPaths): Promise<LocalFinding[]> {
  const exists = (f: string) => Deno.stat(f).then(() => true, () => false);
  const offline = await exists(p.intermediateCertFile) || await exists(p.intermediateKeyFile);
  if (!offline) {
    return [
      await _readable("tls.ca_cert_file", p.certFile, false),
      await _readable("tls.ca_key_file", p.keyFile, true),
    ];
  }
  const out = [
    await _readable("tls.ca_cert_file", p.certFile, false),
    await _readable("tls.intermediate_cert_file", p.intermediateCertFile, false),
    await _readable("tls.intermediate_key_file", p.intermediateKeyFile, true),
  ];
  if (await exists(p.keyFile)) {
    out.push({
      ok: false,
      what: `a root key ${p.keyFile} sits beside the intermediate (offline root)`,
      fix: `move ${p.keyFile} off this machine; it is needed only to sign the next intermediate`,
    });
  }
  return out;
}

/** Whether `dir` exists (or can be created) and a file can be written in it. */
async function _writableDir(label: string, dir: string): Promise<LocalFinding> {
  try {
    await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
    const probe = `${dir}/.skein-check-${crypto.randomUUID()}`;
    await Deno.writeTextFile(probe, "");
    await Deno.remove(probe);
    return { ok: true, what: `${label} ${dir} is writable` };
  } catch (e) {
    return {
      ok: false,
      what: `${label} ${dir} is not writable: ${(e as Error).message}`,
      fix: `create it and give it to the user that runs skein (chown, chmod 700)`,
    };
  }
}

/** Whether a listener can bind `hostname:port` now (port 0 always can). */
function _portFree(label: string, hostname: string, port: number): LocalFinding {
  const addr = formatHostPort({ hostname, port });
  if (port === 0) return { ok: true, what: `${label} ${addr} (any free port)` };
  try {
    Deno.listen({ hostname, port }).close();
    return { ok: true, what: `${label} ${addr} is free` };
  } catch (e) {
    return {
      ok: false,
      what: `${label} ${addr} cannot be bound: ${(e as Error).message}`,
      fix: e instanceof Deno.errors.AddrInUse
        ? `stop what listens there (ss -ltnp 'sport = :${port}'; is skein already running?) ` +
          `or choose another ${label} address`
        : `use an address of this machine for ${label}`,
    };
  }
}

/** Whether a TCP connection to `addr` opens. */
async function _tcpReach(label: string, hostname: string, port: number): Promise<LocalFinding> {
  const addr = formatHostPort({ hostname, port });
  try {
    const c = await _withTimeout(Deno.connect({ hostname, port }));
    c.close();
    return { ok: true, what: `${label} ${addr} is reachable` };
  } catch (e) {
    return {
      ok: false,
      what: `${label} ${addr} cannot be reached: ${(e as Error).message}`,
      fix: "start it, or check the address and the firewall between the machines",
    };
  }
}

function _withTimeout<T>(p: Promise<T>): Promise<T> {
  let t: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      t = setTimeout(
        () => reject(new Error(`no answer within ${LOCAL_CHECK_TIMEOUT_MS} ms`)),
        LOCAL_CHECK_TIMEOUT_MS,
      );
    }),
  ]).finally(() => clearTimeout(t));
}

/** Prints the findings; returns 0 when all are fine, 1 otherwise. */
function _report(io: CommandIo, findings: LocalFinding[]): number {
  for (const f of findings) {
    io.stdout(f.ok ? `ok: ${f.what}\n` : `problem: ${f.what}; fix: ${f.fix}\n`);
  }
  return findings.every((f) => f.ok) ? EXIT.ok : EXIT.failure;
}

/** `skein proxy --check`. */
export async function checkProxyLocally(
  configPath: string,
  dataDir: string | undefined,
  io: CommandIo,
): Promise<number> {
  const cfg = await loadModeConfig(configPath, ProxyConfig, dataDir, io);
  if (!cfg) return EXIT.usage;
  const out: LocalFinding[] = [{ ok: true, what: `${configPath} is a valid proxy configuration` }];
  out.push(await _writableDir("data_dir", cfg.data_dir));
  const enrolled = await Deno.stat(`${cfg.data_dir}/identity.json`).then(() => true, () => false);
  if (!enrolled) out.push(await _readable("token_file", cfg.token_file, true));
  const ca = await _readable("ca_file", cfg.ca_file, false);
  out.push(ca);
  out.push(_portFree("admin", cfg.admin.hostname, cfg.admin.port));
  out.push(_portFree("inbound", cfg.inbound.hostname, cfg.inbound.port));
  if (cfg.http_proxy) {
    out.push(_portFree("http_proxy", cfg.http_proxy.hostname, cfg.http_proxy.port));
  }
  for (const [i, l] of cfg.ingress.entries()) {
    out.push(_portFree(`ingress[${i}]`, l.listen.hostname, l.listen.port));
    for (const c of l.tls?.certificates ?? []) out.push(await _ingressCert(i, c));
  }
  for (const u of cfg.upstreams) {
    out.push(_portFree(`upstream ${u.service ?? "listener"}`, u.listen.hostname, u.listen.port));
  }
  const roots = ca.ok ? (await readCaBundle(cfg.ca_file).catch(() => null)) ?? [] : [];
  const http = new ControlHttp(roots);
  try {
    for (const url of cfg.control) {
      try {
        const r = await http.fetch(`${url.replace(/\/+$/, "")}/v1/health`, {
          signal: AbortSignal.timeout(LOCAL_CHECK_TIMEOUT_MS),
        });
        await r.body?.cancel();
        out.push(
          r.ok ? { ok: true, what: `control ${url} answers` } : {
            ok: false,
            what: `control ${url} answers ${r.status}`,
            fix: "see that node's log (journalctl -u skein-control)",
          },
        );
      } catch (e) {
        out.push({
          ok: false,
          what: `control ${url} cannot be reached: ${(e as Error).message}`,
          fix: "check the URL, the firewall, and that ca_file holds the mesh CA (ca.pem)",
        });
      }
    }
  } finally {
    http.close();
  }
  return _report(io, out);
}

/** `skein control --check`. */
export async function checkControlLocally(
  configPath: string,
  dataDir: string | undefined,
  io: CommandIo,
): Promise<number> {
  const cfg = await loadModeConfig(configPath, ControlConfig, dataDir, io);
  if (!cfg) return EXIT.usage;
  const out: LocalFinding[] = [{
    ok: true,
    what: `${configPath} is a valid control configuration`,
  }];
  out.push(await _writableDir("data_dir", cfg.data_dir));
  const dir = cfg.bootstrap_token_file.replace(/\/[^/]*$/, "") || "/";
  const token = await Deno.stat(cfg.bootstrap_token_file).then(() => true, () => false);
  out.push(
    token
      ? await _readable("bootstrap_token_file", cfg.bootstrap_token_file, true)
      : await _writableDir("bootstrap_token_file's directory", dir),
  );
  out.push(...await _seedFindings(seedPaths(cfg.tls)));
  out.push(_portFree("api", cfg.api.hostname, cfg.api.port));
  out.push(_portFree("raft", cfg.raft.hostname, cfg.raft.port));
  for (const p of cfg.peers) {
    if (p.id === cfg.node) continue;
    out.push(await _tcpReach(`raft peer ${p.id}`, p.hostname, p.port));
  }
  return _report(io, out);
}
