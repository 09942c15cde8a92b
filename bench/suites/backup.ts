import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { sql } from "drizzle-orm";
import { createDatabase } from "../../src/db/database.ts";
import { CPU_PER_UNIT, usPerUnit, WORK_UNIT } from "../lib/cpu-per-unit.ts";
import { exitedChildrenCpuSeconds } from "../lib/process-stats.ts";
import { record } from "../lib/report.ts";

// Backup and restore of 1 000 units with 1 M history records, on each database: the
// rows are seeded with SQL (generate_series) rather than through MQTT, then
// `npm run backup` (no instance running: the CLI opens the database itself) and
// `npm run restore` into a fresh target of the same kind are timed as a person runs
// them (process start included). PostgreSQL uses its own two databases
// (pepeunit_bench_backup, pepeunit_bench_backup_r), never another suite's.

const root = fileURLToPath(new URL("../..", import.meta.url));
const run = promisify(execFile);
const UNITS = 1000;
const RECORDS = 1_000_000;

const id = (block: string, i: string) =>
  sql.raw(`('00000000-0000-4000-${block}-' || lpad(to_hex(${i}), 12, '0'))::uuid`);

async function seed(opts: { url?: string; pgliteDir?: string }): Promise<void> {
  const database = await createDatabase(opts);
  const db = database.db;
  try {
    const user = sql.raw(`'00000000-0000-4000-8000-000000000001'::uuid`);
    const repo = sql.raw(`'00000000-0000-4000-8000-000000000002'::uuid`);
    await db.execute(sql`insert into users (uuid, login, email, password_hash, role, status)
      values (${user}, 'bench', 'bench@example.test', 'x', 'Admin', 'Verified')`);
    await db.execute(sql`insert into repos (uuid, creator_uuid, name, url)
      values (${repo}, ${user}, 'bench', 'https://example.test/bench.git')`);
    await db.execute(sql`insert into units (uuid, creator_uuid, repo_uuid, name, branch, commit, token_salt, env_enc)
      select ${id("8001", "i")}, ${user}, ${repo}, 'unit-' || i, 'main', repeat('a', 40), md5(i::text),
        encode(sha256(i::text::bytea), 'base64')
      from generate_series(1, ${UNITS}) i`);
    await db.execute(sql`insert into unit_nodes (uuid, unit_uuid, type, topic_name, is_data_pipe_active)
      select ${id("8002", "i")}, ${id("8001", "i")}, 'Output', 'temperature', true
      from generate_series(1, ${UNITS}) i`);
    await db.execute(sql`insert into history_records (node_uuid, state, state_type, created_at)
      select ${id("8002", `1 + (g % ${UNITS})`)}, round((random() * 1000)::numeric, 2)::text, 'Number',
        now() - g * interval '1 second'
      from generate_series(0, ${RECORDS - 1}) g`);
  } finally {
    await database.close();
  }
}

async function cli(
  args: string[],
  env: Record<string, string | undefined>,
): Promise<{ seconds: number; cpuSeconds: number; stdout: string }> {
  const start = performance.now();
  // The CLI is the only child that exits meanwhile (suites run one at a time).
  const cpuBefore = exitedChildrenCpuSeconds();
  const { stdout } = await run(process.execPath, ["src/backup/cli.ts", ...args], {
    cwd: root,
    env: { PATH: process.env.PATH, ...env },
    maxBuffer: 16 * 1024 * 1024,
  });
  return {
    seconds: (performance.now() - start) / 1000,
    cpuSeconds: exitedChildrenCpuSeconds() - cpuBefore,
    stdout,
  };
}

async function recreate(adminUrl: string, name: string): Promise<string> {
  const { default: postgres } = await import("postgres");
  const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
  await admin.unsafe(`drop database if exists ${name} with (force)`);
  await admin.unsafe(`create database ${name}`);
  await admin.end();
  const u = new URL(adminUrl);
  u.pathname = `/${name}`;
  return u.toString();
}

export async function backupSuite(kind: "pglite" | "postgres", adminUrl: string): Promise<void> {
  console.log(
    `\n# Backup and restore: ${UNITS} units, ${RECORDS / 1e6} M history records (${kind})`,
  );
  const work = mkdtempSync(path.join(tmpdir(), "pepeunit-bench-backup-"));
  try {
    const source = {
      PEPEUNIT_DATA_DIR: path.join(work, "source", "data"),
      PEPEUNIT_REPOSITORIES_DIR: path.join(work, "source", "repositories"),
      DATABASE_URL:
        kind === "postgres" ? await recreate(adminUrl, "pepeunit_bench_backup") : undefined,
    };
    const target = {
      PEPEUNIT_DATA_DIR: path.join(work, "target", "data"),
      PEPEUNIT_REPOSITORIES_DIR: path.join(work, "target", "repositories"),
      DATABASE_URL:
        kind === "postgres" ? await recreate(adminUrl, "pepeunit_bench_backup_r") : undefined,
    };
    const seedStart = performance.now();
    await seed(
      source.DATABASE_URL
        ? { url: source.DATABASE_URL }
        : { pgliteDir: path.join(source.PEPEUNIT_DATA_DIR, "pglite") },
    );
    const seedS = (performance.now() - seedStart) / 1000;
    const file = path.join(work, "bench.tar.gz");
    const backup = await cli(["backup", "--out", file], source);
    const backupS = backup.seconds;
    const sizeMB = statSync(file).size / 2 ** 20;
    const restored = await cli(["restore", file], target);
    const restoreS = restored.seconds;
    // Every seeded row came back (users + repos + units + variables + records at least).
    const rows = Number(/restored: (\d+) rows/.exec(restored.stdout)?.[1]);
    if (!(rows >= RECORDS + 2 * UNITS + 2)) throw new Error(`restore: ${restored.stdout}`);
    record({
      suite: "backup",
      case: `${UNITS} units + ${RECORDS / 1e6} M records`,
      database: kind,
      metric: {
        seedS: Number(seedS.toFixed(1)),
        backupS: Number(backupS.toFixed(1)),
        restoreS: Number(restoreS.toFixed(1)),
        sizeMB: Number(sizeMB.toFixed(1)),
        rows,
        // The CLI process's CPU (PostgreSQL's own work is not counted), backup and restore.
        [CPU_PER_UNIT]: usPerUnit(backup.cpuSeconds + restored.cpuSeconds, rows),
        [WORK_UNIT]: "row backed up and restored (the CLI's CPU)",
      },
    });
  } finally {
    rmSync(work, { recursive: true, force: true });
    if (kind === "postgres") {
      const { default: postgres } = await import("postgres");
      const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
      await admin.unsafe("drop database if exists pepeunit_bench_backup with (force)");
      await admin.unsafe("drop database if exists pepeunit_bench_backup_r with (force)");
      await admin.end();
    }
  }
}
