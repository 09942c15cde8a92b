import { promises as dns } from "node:dns";
import { realpath } from "node:fs/promises";
import { BlockList, isIP } from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { Config } from "../config.ts";
import { HttpError } from "../http/errors.ts";

// The instance clones whatever URL a user types, so the URL is a request the
// server makes on the user's behalf (SSRF). Only plain http(s) to public
// addresses passes unless the operator allows local sources (tests, a LAN
// install). What is checked here is what git receives: the normalised href.

export class CloneUrlError extends HttpError {
  constructor(detail: string) {
    super(422, `clone URL refused: ${detail}`);
  }
}

export type LookupFn = (host: string) => Promise<Array<{ address: string; family: number }>>;

export type CloneUrlOptions = {
  allowLocal: boolean;
  /** Host name resolution; injectable so unit tests need no DNS. */
  lookup?: LookupFn;
  /**
   * Directories a file:// source must never be inside, even with local sources
   * allowed: the instance's own clones (other users' private repos) and data.
   */
  refusedDirs?: readonly string[];
  /** When given, file:// sources must be inside one of these directories. */
  localRoots?: readonly string[] | undefined;
};

/**
 * What was checked, and how git must reach exactly that: `url` is stored on the
 * repo; `gitUrl` is handed to git (for file:// the resolved real path, so a
 * symlink swapped after the check cannot redirect it); `resolve` pins git's
 * connection to the checked addresses (curl's "host:port:addr[,addr]"), so git
 * does not look the name up again (DNS rebinding).
 */
export type CloneTarget = { url: string; gitUrl: string; resolve?: string };

/** The checker's options as this instance is configured. */
export function cloneUrlOptions(
  config: Pick<Config, "gitAllowLocal" | "repositoriesDir" | "dataDir" | "gitLocalRoots">,
): CloneUrlOptions {
  return {
    allowLocal: config.gitAllowLocal,
    refusedDirs: [config.repositoriesDir, config.dataDir],
    localRoots: config.gitLocalRoots,
  };
}

const MAX_URL_LENGTH = 2048;

const defaultLookup: LookupFn = (host) => dns.lookup(host, { all: true, verbatim: true });

/** Loopback, private, link-local, unspecified, multicast, reserved and documentation ranges. */
const nonPublic = new BlockList();
for (const [net, prefix] of [
  ["0.0.0.0", 8],
  ["10.0.0.0", 8],
  ["100.64.0.0", 10],
  ["127.0.0.0", 8],
  ["169.254.0.0", 16],
  ["172.16.0.0", 12],
  ["192.0.0.0", 24],
  ["192.0.2.0", 24],
  ["192.88.99.0", 24],
  ["192.168.0.0", 16],
  ["198.18.0.0", 15],
  ["198.51.100.0", 24],
  ["203.0.113.0", 24],
  ["224.0.0.0", 4],
  ["240.0.0.0", 4],
] as const) {
  nonPublic.addSubnet(net, prefix, "ipv4");
}
for (const [net, prefix] of [
  ["::", 128],
  ["::1", 128],
  ["::", 96], // IPv4-compatible (deprecated)
  ["64:ff9b::", 96], // NAT64: may reach an internal IPv4
  ["64:ff9b:1::", 48], // local-use NAT64 (RFC 8215): the same
  ["100::", 64],
  ["2001::", 32], // Teredo: tunnels to an IPv4 server/client embedded in the address
  ["2002::", 16], // 6to4: the IPv4 gateway is embedded in bits 16..47
  ["2001:db8::", 32],
  ["fc00::", 7],
  ["fe80::", 10],
  ["fec0::", 10],
  ["ff00::", 8],
] as const) {
  nonPublic.addSubnet(net, prefix, "ipv6");
}

/** Whether an IP address literal is anything but a public unicast address. */
export function isNonPublicAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 4) return nonPublic.check(address, "ipv4");
  if (family === 6) {
    // ::ffff:a.b.c.d is the IPv4 host a.b.c.d: judge it as that.
    const mapped = /^::ffff:(?:0:)?(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
    if (mapped?.[1]) return nonPublic.check(mapped[1], "ipv4");
    const hex = /^::ffff:(?:0:)?([0-9a-f]{1,4}):([0-9a-f]{1,4})$/i.exec(address);
    if (hex?.[1] && hex[2]) {
      const hi = Number.parseInt(hex[1], 16);
      const lo = Number.parseInt(hex[2], 16);
      return nonPublic.check(`${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`, "ipv4");
    }
    return nonPublic.check(address, "ipv6");
  }
  // Not an address at all: refuse rather than guess.
  return true;
}

/**
 * Checks a clone URL and returns the normalised form to store and hand to git,
 * or throws CloneUrlError (a 422) saying why it is refused.
 */
export async function checkCloneUrl(raw: string, opts: CloneUrlOptions): Promise<string> {
  return (await checkCloneTarget(raw, opts)).url;
}

/** Checks a clone URL; see CloneTarget for what git must be given. */
export async function checkCloneTarget(raw: string, opts: CloneUrlOptions): Promise<CloneTarget> {
  if (raw.length > MAX_URL_LENGTH)
    throw new CloneUrlError(`longer than ${MAX_URL_LENGTH} characters`);
  // biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point
  if (/[\s\u0000-\u001f\u007f]/.test(raw)) {
    throw new CloneUrlError("whitespace or control characters are not allowed");
  }
  if (raw.startsWith("-")) throw new CloneUrlError("must not start with '-'");
  // git's "<transport>::<address>" form (ext::, fd::, ...) runs remote helpers.
  if (/^[A-Za-z0-9+.-]*::/.test(raw)) {
    throw new CloneUrlError("'<transport>::' URLs (ext::, fd::, ...) are not allowed");
  }
  // A backslash is a path separator to the URL parser but part of the userinfo
  // to curl: such differences let a URL pass here and reach another host.
  if (raw.includes("\\")) throw new CloneUrlError("backslashes are not allowed");

  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new CloneUrlError("not a valid URL (expected https://host/path)");
  }
  if (url.username || url.password) {
    throw new CloneUrlError(
      "credentials inside the URL are not allowed; put them in the credentials field",
    );
  }
  if (url.protocol === "file:") return checkFileSource(raw, url, opts);
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    throw new CloneUrlError("only https:// and http:// URLs are allowed");
  }
  const host = url.hostname.replace(/^\[(.*)\]$/, "$1");
  if (!host) throw new CloneUrlError("the URL has no host");
  // An address literal is connected to as written: nothing to pin.
  if (isIP(host)) {
    if (!opts.allowLocal && isNonPublicAddress(host)) throw privateAddress(host, host);
    return { url: url.href, gitUrl: url.href };
  }
  let addresses: string[];
  try {
    addresses = (await (opts.lookup ?? defaultLookup)(host)).map((a) => a.address);
  } catch {
    addresses = [];
  }
  if (!addresses.length) {
    // A LAN install may name hosts only git's own resolver knows; nothing to protect there.
    if (opts.allowLocal) return { url: url.href, gitUrl: url.href };
    throw new CloneUrlError(`cannot resolve host ${host}`);
  }
  if (!opts.allowLocal) {
    // Any non-public answer refuses: git may pick whichever address it likes.
    const bad = addresses.find(isNonPublicAddress);
    if (bad) throw privateAddress(host, bad);
  }
  const port = url.port || (url.protocol === "https:" ? "443" : "80");
  const pinned = addresses.map((a) => (isIP(a) === 6 ? `[${a}]` : a)).join(",");
  return { url: url.href, gitUrl: url.href, resolve: `${host}:${port}:${pinned}` };
}

function privateAddress(host: string, address: string): CloneUrlError {
  return new CloneUrlError(
    `host ${host} resolves to a local or private address (${address}); not allowed on this instance`,
  );
}

/** Whether `inner` is `dir` itself or inside it (both already real, absolute paths). */
function isInside(inner: string, dir: string): boolean {
  const rel = path.relative(dir, inner);
  return rel !== ".." && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel);
}

/**
 * The real path of `p`: symlinks resolved as far as the path exists, the missing
 * rest appended (git then fails on it; nothing can be created there by a user).
 */
async function realPathOf(p: string): Promise<string> {
  try {
    return await realpath(p);
  } catch {
    const parent = path.dirname(p);
    if (parent === p) return p;
    return path.join(await realPathOf(parent), path.basename(p));
  }
}

// Characters a path may have so that "file://" + path means the same to git as to us.
const PLAIN_PATH_RE = /^\/[A-Za-z0-9._~@+=,/-]*$/;

async function checkFileSource(raw: string, url: URL, opts: CloneUrlOptions): Promise<CloneTarget> {
  if (!opts.allowLocal) throw new CloneUrlError("file:// URLs are not allowed on this instance");
  if (url.host) throw new CloneUrlError("file:// URLs must not name a host");
  // Percent escapes, queries and fragments are read differently by the URL parser
  // and by git: refuse them rather than guess which path git would open.
  if (raw.includes("%") || url.search || url.hash || raw.includes("?") || raw.includes("#")) {
    throw new CloneUrlError("file:// URLs must be a plain path (no %, ? or #)");
  }
  const real = await realPathOf(path.resolve(fileURLToPath(url)));
  if (!PLAIN_PATH_RE.test(real)) {
    throw new CloneUrlError("file:// paths may only use letters, digits and . _ ~ @ + = , / -");
  }
  for (const dir of opts.refusedDirs ?? []) {
    if (isInside(real, await realPathOf(path.resolve(dir)))) {
      throw new CloneUrlError(
        "file:// URLs must not point into the instance's own data or repositories directory",
      );
    }
  }
  if (opts.localRoots) {
    let allowed = false;
    for (const root of opts.localRoots) {
      if (isInside(real, await realPathOf(path.resolve(root)))) allowed = true;
    }
    if (!allowed) {
      throw new CloneUrlError(
        "file:// URLs must point inside one of PEPEUNIT_GIT_LOCAL_ROOTS on this instance",
      );
    }
  }
  return { url: url.href, gitUrl: `file://${real}` };
}
