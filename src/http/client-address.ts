import { BlockList, isIP } from "node:net";
import { getConnInfo } from "@hono/node-server/conninfo";
import type { Context } from "hono";

/** `::ffff:10.0.0.1` (IPv4 on a dual-stack socket) is the IPv4 address it carries. */
function normalize(address: string): string {
  const trimmed = address.trim();
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(trimmed);
  return mapped?.[1] ?? trimmed;
}

function familyOf(address: string): "ipv4" | "ipv6" | null {
  const family = isIP(address);
  return family === 4 ? "ipv4" : family === 6 ? "ipv6" : null;
}

/**
 * Who is calling: the TCP peer, or — when the peer is one of `trustedProxies` (IPs or
 * CIDR blocks) — the nearest X-Forwarded-For hop that is not a trusted proxy itself.
 * Without trusted proxies the header is ignored: anyone can write it.
 */
export function createClientAddress(trustedProxies: string[]): (c: Context) => string {
  const trusted = new BlockList();
  for (const entry of trustedProxies) {
    const [address = "", bits] = entry.split("/");
    const family = familyOf(address);
    if (!family) continue; // config.ts validated the list
    if (bits === undefined) trusted.addAddress(address, family);
    else trusted.addSubnet(address, Number(bits), family);
  }
  const isTrusted = (address: string) => {
    const family = familyOf(address);
    return family !== null && trusted.check(address, family);
  };
  return (c) => {
    let peer: string;
    try {
      peer = normalize(getConnInfo(c).remote.address ?? "");
    } catch {
      // Not served by @hono/node-server (app.request in tools): no socket to ask.
      return "unknown";
    }
    if (!peer || !isTrusted(peer)) return peer || "unknown";
    let client = peer;
    const hops = (c.req.header("x-forwarded-for") ?? "").split(",").reverse();
    for (const hop of hops) {
      const address = normalize(hop);
      if (!familyOf(address)) break;
      client = address;
      if (!isTrusted(address)) break;
    }
    return client;
  };
}
