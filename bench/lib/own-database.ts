/** A new, empty PostgreSQL database of a suite's own (other suites drop and reuse `pepeunit_bench`). */
export async function ownDatabase(pgUrl: string, name: string): Promise<string> {
  const { default: postgres } = await import("postgres");
  const sql = postgres(pgUrl, { max: 1, onnotice: () => {} });
  await sql.unsafe(`drop database if exists ${name} with (force)`);
  await sql.unsafe(`create database ${name}`);
  await sql.end();
  const u = new URL(pgUrl);
  u.pathname = `/${name}`;
  return u.toString();
}
