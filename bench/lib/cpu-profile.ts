import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";

// Where the server's CPU time went: the top self-time functions of a V8 .cpuprofile
// (written by `node --cpu-prof`, see startBenchServer's cpuProfile option).

type ProfileNode = {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
};
type Profile = { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[] };

export type HotFunction = { name: string; where: string; selfMs: number; percent: number };

function shortUrl(url: string): string {
  const nm = url.lastIndexOf("node_modules/");
  if (nm !== -1) return url.slice(nm + "node_modules/".length);
  const src = url.indexOf("/src/");
  if (src !== -1) return url.slice(src + 1);
  return url.replace(/^file:\/\//, "");
}

/** Self time per function (summed over every node of the same function), biggest first. */
export function topSelfTime(file: string, limit = 15): { totalMs: number; top: HotFunction[] } {
  const profile = JSON.parse(readFileSync(file, "utf8")) as Profile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<string, { name: string; where: string; us: number }>();
  let totalUs = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const node = byId.get(profile.samples[i] as number);
    const dt = profile.timeDeltas[i] ?? 0;
    if (!node) continue;
    const f = node.callFrame;
    const name = f.functionName || "(anonymous)";
    // Percentages are of busy time: an idle server waiting for the network is not a cost.
    if (name === "(idle)") continue;
    totalUs += dt;
    const where = f.url ? `${shortUrl(f.url)}:${f.lineNumber + 1}` : "";
    const key = `${name}@${where}`;
    const entry = selfUs.get(key) ?? { name, where, us: 0 };
    entry.us += dt;
    selfUs.set(key, entry);
  }
  const top = [...selfUs.values()]
    .sort((a, b) => b.us - a.us)
    .slice(0, limit)
    .map((e) => ({
      name: e.name,
      where: e.where,
      selfMs: Math.round(e.us / 1000),
      percent: totalUs ? Math.round((e.us / totalUs) * 1000) / 10 : 0,
    }));
  return { totalMs: Math.round(totalUs / 1000), top };
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

export function printProfile(title: string, file: string, limit = 15): HotFunction[] {
  const { totalMs, top } = topSelfTime(file, limit);
  console.log(`\n  CPU profile of the server, ${title} (${totalMs} ms busy; ${file})`);
  for (const f of top) {
    console.log(`    ${f.percent.toFixed(1).padStart(5)}%  ${String(f.selfMs).padStart(6)} ms  ${f.name}  ${f.where}`);
  }
  return top;
}
