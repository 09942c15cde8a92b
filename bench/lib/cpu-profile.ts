import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";

// Where the server's CPU time went, from a V8 .cpuprofile (written by `node --cpu-prof`,
// see startBenchServer's cpuProfile option): the top self-time functions, and the
// project functions (under src/) with the most inclusive time — which of our code
// paths the self time is spent under.

type ProfileNode = {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
};
type Profile = {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  /** µs of CLOCK_MONOTONIC, the clock of process.hrtime: windows are taken in the bench process. */
  startTime: number;
};

/** A span of the server's life, in µs of the monotonic clock (see `monotonicUs`). */
export type ProfileWindow = { fromUs: number; toUs: number };

/** Now on the clock V8 stamps profiles with (CLOCK_MONOTONIC), in µs. */
export function monotonicUs(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

export type HotFunction = { name: string; where: string; ms: number; percent: number };

function shortUrl(url: string): string {
  const nm = url.lastIndexOf("node_modules/");
  if (nm !== -1) return url.slice(nm + "node_modules/".length);
  const src = url.indexOf("/src/");
  if (src !== -1) return url.slice(src + 1);
  return url.replace(/^file:\/\//, "");
}

function label(node: ProfileNode): { key: string; name: string; where: string } {
  const f = node.callFrame;
  const name = f.functionName || "(anonymous)";
  const where = f.url ? `${shortUrl(f.url)}:${f.lineNumber + 1}` : "";
  return { key: `${name}@${where}`, name, where };
}

const isProject = (node: ProfileNode) =>
  node.callFrame.url.includes("/src/") && !node.callFrame.url.includes("node_modules");

export function analyzeProfile(
  file: string,
  limit = 15,
  window?: ProfileWindow,
): { busyMs: number; self: HotFunction[]; project: HotFunction[] } {
  const profile = JSON.parse(readFileSync(file, "utf8")) as Profile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const self = new Map<string, { name: string; where: string; us: number }>();
  const inclusive = new Map<string, { name: string; where: string; us: number }>();
  let busyUs = 0;
  const add = (m: typeof self, node: ProfileNode, us: number) => {
    const l = label(node);
    const e = m.get(l.key) ?? { name: l.name, where: l.where, us: 0 };
    e.us += us;
    m.set(l.key, e);
  };
  let t = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    const node = byId.get(profile.samples[i] as number);
    const dt = profile.timeDeltas[i] ?? 0;
    t += dt;
    if (window && (t < window.fromUs || t > window.toUs)) continue;
    // Percentages are of busy time: a server waiting for the network costs nothing.
    if (!node || node.callFrame.functionName === "(idle)") continue;
    busyUs += dt;
    add(self, node, dt);
    const seen = new Set<string>();
    for (let id: number | undefined = node.id; id !== undefined; id = parent.get(id)) {
      const n = byId.get(id);
      if (!n || !isProject(n)) continue;
      const key = label(n).key;
      if (seen.has(key)) continue; // recursion counts once
      seen.add(key);
      add(inclusive, n, dt);
    }
  }
  const top = (m: typeof self) =>
    [...m.values()]
      .sort((a, b) => b.us - a.us)
      .slice(0, limit)
      .map((e) => ({
        name: e.name,
        where: e.where,
        ms: Math.round(e.us / 1000),
        percent: busyUs ? Math.round((e.us / busyUs) * 1000) / 10 : 0,
      }));
  return { busyMs: Math.round(busyUs / 1000), self: top(self), project: top(inclusive) };
}

/** The newest profile in a directory, if any. */
export function newestProfile(dir: string): string | null {
  try {
    const files = readdirSync(dir).filter((f) => f.endsWith(".cpuprofile"));
    files.sort();
    const last = files.at(-1);
    return last ? path.join(dir, last) : null;
  } catch {
    return null;
  }
}

export function printProfile(
  title: string,
  file: string,
  limit = 15,
  window?: ProfileWindow,
): void {
  const { busyMs, self, project } = analyzeProfile(file, limit, window);
  const line = (f: HotFunction) =>
    `    ${f.percent.toFixed(1).padStart(5)}%  ${String(f.ms).padStart(6)} ms  ${f.name}  ${f.where}`;
  console.log(`\n  CPU profile of the server, ${title} (${busyMs} ms busy; ${file})`);
  console.log("   self time:");
  for (const f of self) console.log(line(f));
  console.log("   inclusive time of project functions (src/):");
  for (const f of project) console.log(line(f));
}
