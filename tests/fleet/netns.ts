/**
 * Hosts in Linux network namespaces, joined by a bridge, with nftables faults per host: the
 * fleet tests' network. The bridge lives in a namespace of its own; the test process (in the
 * root namespace) reaches every host through one veth into it, so nothing else of the machine's
 * network changes. Rules only ever name the namespaces' own addresses. Needs root, `ip` and `nft`.
 * @module
 */

/** Whether this process can build namespaces (root, with `ip` and `nft` installed). */
export function fleetSupported(): boolean {
  if (Deno.build.os !== "linux" || Deno.uid() !== 0) return false;
  for (const cmd of ["ip", "nft"]) {
    try {
      new Deno.Command(cmd, { args: ["-V"], stdout: "null", stderr: "null" }).outputSync();
    } catch {
      return false;
    }
  }
  return true;
}

/** Runs a command; throws with its stderr when it fails. */
async function _run(cmd: string, args: string[], stdin?: string): Promise<void> {
  const child = new Deno.Command(cmd, {
    args,
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  if (stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(stdin));
    await w.close();
  }
  const out = await child.output();
  if (!out.success) {
    throw new Error(`${cmd} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr).trim()}`);
  }
}

/** The nftables table a fault lives in (one per host namespace; deleting it heals). */
const _TABLE = "skein_fleet";

/** A set of hosts on one bridge. */
export class Fleet {
  /** The test process's own address on the bridge. */
  readonly driverAddr: string;
  readonly #tag: string;
  readonly #subnet: string;
  readonly #hosts = new Map<string, { ns: string; addr: string }>();
  #ownsSwitch = false;

  private constructor(tag: string, subnet: string) {
    this.#tag = tag;
    this.#subnet = subnet;
    this.driverAddr = `${subnet}.1`;
  }

  /** Builds the bridge and one namespace per host name. */
  static async create(hosts: readonly string[]): Promise<Fleet> {
    // Test modules run in parallel inside one process, so the pid alone cannot tell fleets
    // apart: six random base-36 characters (2^31 names) keep interface names under 15 bytes.
    const tag = Array.from(
      crypto.getRandomValues(new Uint8Array(6)),
      (b) => (b % 36).toString(36),
    ).join("");
    const subnet = `10.${200 + Math.floor(Math.random() * 50)}.${Math.floor(Math.random() * 250)}`;
    const f = new Fleet(tag, subnet);
    try {
      await f.#build(hosts);
    } catch (e) {
      await f.destroy();
      throw e;
    }
    return f;
  }

  get #sw(): string {
    return `skf${this.#tag}sw`;
  }

  async #build(hosts: readonly string[]): Promise<void> {
    const sw = this.#sw;
    await _run("ip", ["netns", "add", sw]);
    // From here on the switch namespace is this fleet's, so destroy() may remove it.
    this.#ownsSwitch = true;
    await _run("ip", ["-n", sw, "link", "add", "br0", "type", "bridge"]);
    await _run("ip", ["-n", sw, "link", "set", "br0", "up"]);
    const drv = `skf${this.#tag}d`;
    await _run("ip", ["link", "add", drv, "type", "veth", "peer", "name", "drv", "netns", sw]);
    await _run("ip", ["-n", sw, "link", "set", "drv", "master", "br0", "up"]);
    await _run("ip", ["addr", "add", `${this.driverAddr}/24`, "dev", drv]);
    await _run("ip", ["link", "set", drv, "up"]);
    let i = 10;
    for (const h of hosts) {
      const ns = `skf${this.#tag}h${i}`;
      const addr = `${this.#subnet}.${i}`;
      await _run("ip", ["netns", "add", ns]);
      this.#hosts.set(h, { ns, addr });
      await _run("ip", ["-n", ns, "link", "set", "lo", "up"]);
      await _run("ip", [
        "-n",
        ns,
        "link",
        "add",
        "eth0",
        "type",
        "veth",
        "peer",
        "name",
        `p${i}`,
        "netns",
        sw,
      ]);
      await _run("ip", ["-n", sw, "link", "set", `p${i}`, "master", "br0", "up"]);
      await _run("ip", ["-n", ns, "addr", "add", `${addr}/24`, "dev", "eth0"]);
      await _run("ip", ["-n", ns, "link", "set", "eth0", "up"]);
      i++;
    }
  }

  #host(h: string): { ns: string; addr: string } {
    const x = this.#hosts.get(h);
    if (!x) throw new Error(`no host ${h} in the fleet`);
    return x;
  }

  /** A host's address on the bridge. */
  addr(h: string): string {
    return this.#host(h).addr;
  }

  /** The command prefix that runs a program on host `h`. */
  exec(h: string): string[] {
    return ["ip", "netns", "exec", this.#host(h).ns];
  }

  /** Cuts host `h` off from `peers` both ways (the test process still reaches it). */
  async isolate(h: string, peers: readonly string[]): Promise<void> {
    const set = peers.map((p) => this.addr(p)).join(", ");
    await this.#rules(h, `ip saddr { ${set} } drop`, `ip daddr { ${set} } drop`);
  }

  /** Drops what host `h` receives from `peers`; what it sends still arrives (a one-way fault). */
  async deafTo(h: string, peers: readonly string[]): Promise<void> {
    const set = peers.map((p) => this.addr(p)).join(", ");
    await this.#rules(h, `ip saddr { ${set} } drop`, null);
  }

  /** Cuts host `h` off from every other host and from the test process. */
  async cut(h: string): Promise<void> {
    await this.#rules(h, `iifname "eth0" drop`, `oifname "eth0" drop`);
  }

  /** Drops `percent` % of the packets host `h` receives and sends, at random. */
  async lossy(h: string, percent: number): Promise<void> {
    const n = Math.max(0, Math.min(100, Math.round(percent)));
    await this.#rules(
      h,
      `iifname "eth0" numgen random mod 100 < ${n} drop`,
      `oifname "eth0" numgen random mod 100 < ${n} drop`,
    );
  }

  /** Removes host `h`'s faults. */
  async heal(h: string): Promise<void> {
    await _run("ip", [...this.exec(h).slice(1), "nft", "delete", "table", "inet", _TABLE])
      .catch(() => {});
  }

  async #rules(h: string, input: string, output: string | null): Promise<void> {
    await this.heal(h);
    const out = output === null
      ? ""
      : `  chain out { type filter hook output priority 0; policy accept; ${output}; }\n`;
    const ruleset = `table inet ${_TABLE} {
  chain in { type filter hook input priority 0; policy accept; ${input}; }
${out}}
`;
    await _run("ip", ["netns", "exec", this.#host(h).ns, "nft", "-f", "-"], ruleset);
  }

  /** Removes every namespace (and so every veth and rule) this fleet made. */
  async destroy(): Promise<void> {
    for (const { ns } of this.#hosts.values()) {
      await _run("ip", ["netns", "del", ns]).catch(() => {});
    }
    this.#hosts.clear();
    // A name that was already taken belongs to another fleet: never delete it.
    if (this.#ownsSwitch) await _run("ip", ["netns", "del", this.#sw]).catch(() => {});
    this.#ownsSwitch = false;
  }
}
