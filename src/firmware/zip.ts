import { ZipFile } from "yazl";
import type { FirmwareFile } from "./firmware-tree.ts";

// The zip is for people (browsers, desktop unzip), so names carry no "./" prefix.
// A fixed local-time DOS date and no "UT" extra field keep the bytes the same for the
// same inputs on any machine and time zone (DOS dates cannot go below 1980).
const ZIP_MTIME = new Date(1980, 0, 1, 0, 0, 0);

export function writeZip(files: readonly FirmwareFile[]): Promise<Buffer> {
  const zip = new ZipFile();
  const dirs = new Set<string>();
  for (const f of files) {
    const segments = f.path.split("/");
    for (let i = 1; i < segments.length; i++) {
      const dir = segments.slice(0, i).join("/");
      if (dirs.has(dir)) continue;
      dirs.add(dir);
      zip.addEmptyDirectory(dir, { mtime: ZIP_MTIME, mode: 0o40755, forceDosTimestamp: true });
    }
    zip.addBuffer(f.content, f.path, {
      mtime: ZIP_MTIME,
      mode: 0o100000 | f.mode,
      forceDosTimestamp: true,
      compressionLevel: 9,
    });
  }
  zip.end();
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    zip.outputStream.on("data", (d: Buffer) => chunks.push(d));
    zip.outputStream.on("error", reject);
    zip.outputStream.on("end", () => resolve(Buffer.concat(chunks)));
  });
}
