import { spawn } from "node:child_process";
import { mkdir, readdir, rm, stat } from "node:fs/promises";
import path from "node:path";
import { type SimpleGit, simpleGit } from "simple-git";
import { writeGateFor } from "./write-gate.ts";

// Every clone is a bare mirror in `<repositoriesDir>/<uuid>`: all branches and tags,
// no working tree, so nothing is ever built from a checkout. Credentials reach git
// only through GIT_CONFIG_* environment variables of the one process that needs them:
// never argv (visible in ps), never .git/config, never logs.

export type GitCredentials = { username: string; password: string };
export type GitRef = { name: string; commit: string };
export type GitVersions = { branches: GitRef[]; tags: GitRef[] };
export type TreeFile = { path: string; mode: number; content: Buffer };

/** How git must reach the remote: `resolve` pins the connection (curl's "host:port:addr"). */
export type RemoteOptions = { resolve?: string | undefined };
/** A regular file of a commit's tree, without its content. */
export type TreeEntry = { path: string; mode: number; size: number; object: string };

export class GitError extends Error {}

const SHA_RE = /^[0-9a-f]{40}$/;
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const GIT_ENV_KEYS = [
  "GIT_TERMINAL_PROMPT",
  "GIT_ALLOW_PROTOCOL",
  "GIT_CONFIG_NOSYSTEM",
  "GIT_CONFIG_GLOBAL",
  "GIT_CONFIG_COUNT",
  ...[0, 1, 2, 3, 4, 5].flatMap((i) => [`GIT_CONFIG_KEY_${i}`, `GIT_CONFIG_VALUE_${i}`]),
  "GIT_ASKPASS",
];

export type GitStoreOptions = {
  repositoriesDir: string;
  /** Allows file:// remotes (the size and URL checks happen before git is called). */
  allowLocal: boolean;
  /** PATH for git's child processes. */
  childPath: string;
  timeoutMs?: number;
};

export type GitStore = ReturnType<typeof createGitStore>;

export function createGitStore(opts: GitStoreOptions) {
  const timeoutMs = opts.timeoutMs ?? 120_000;
  const protocols = opts.allowLocal ? "http:https:file" : "http:https";
  // A backup snapshots the clones between changes (src/backup/).
  const gate = writeGateFor(path.resolve(opts.repositoriesDir));

  function dirFor(repoUuid: string): string {
    // The uuid is ours, but checking it keeps a bad value from ever naming another path.
    if (!UUID_RE.test(repoUuid)) throw new GitError("bad repository id");
    return path.join(opts.repositoriesDir, repoUuid);
  }

  function env(creds?: GitCredentials, remote: RemoteOptions = {}): Record<string, string> {
    const e: Record<string, string> = {
      PATH: opts.childPath,
      HOME: opts.repositoriesDir,
      GIT_TERMINAL_PROMPT: "0",
      GIT_ASKPASS: "/bin/false",
      GIT_ALLOW_PROTOCOL: protocols,
      GIT_CONFIG_NOSYSTEM: "1",
      GIT_CONFIG_GLOBAL: "/dev/null",
    };
    const config: Array<[string, string]> = [["protocol.ext.allow", "never"]];
    // The URL was checked to name a public host; a redirect must not lead git
    // (and the credentials header) to a local or private one instead.
    if (!opts.allowLocal) config.push(["http.followRedirects", "false"]);
    // The host name was resolved and checked once: git connects to exactly those
    // addresses (TLS still verifies the name), so a DNS answer that changes between
    // the check and the connection (rebinding) cannot send git elsewhere.
    if (remote.resolve) config.push(["http.curloptResolve", remote.resolve]);
    if (creds) {
      const basic = Buffer.from(`${creds.username}:${creds.password}`).toString("base64");
      config.push(["http.extraHeader", `Authorization: Basic ${basic}`]);
    }
    e.GIT_CONFIG_COUNT = String(config.length);
    config.forEach(([key, value], i) => {
      e[`GIT_CONFIG_KEY_${i}`] = key;
      e[`GIT_CONFIG_VALUE_${i}`] = value;
    });
    return e;
  }

  function git(
    baseDir: string | undefined,
    creds?: GitCredentials,
    abort?: AbortSignal,
    remote?: RemoteOptions,
  ): SimpleGit {
    const g = simpleGit({
      ...(baseDir ? { baseDir } : {}),
      binary: "git",
      maxConcurrentProcesses: 4,
      timeout: { block: timeoutMs },
      allowEnvironment: GIT_ENV_KEYS,
      // simple-git 4 refuses these environment variables unless told: they are set
      // here by the store itself (never from user input) to lock git down.
      unsafe: {
        allowUnsafeAskPass: true,
        allowUnsafeConfigPaths: true,
        allowUnsafeConfigEnvCount: true,
        allowUnsafeProtocolOverride: true,
      },
      ...(abort ? { abort } : {}),
    } as Parameters<typeof simpleGit>[0]);
    return g.env(env(creds, remote));
  }

  /** Removes the credentials (if any) from git's error text before it reaches a user. */
  function cleanError(err: unknown, creds?: GitCredentials): GitError {
    let msg = err instanceof Error ? err.message : String(err);
    if (creds) msg = msg.split(creds.password).join("***");
    msg = msg.replace(/Authorization: Basic \S+/g, "Authorization: ***");
    const lines = msg
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith("hint:"));
    // git's first fatal/error lines name the cause; the trailing ones are generic
    // advice ("Please make sure you have the correct access rights...").
    const causes = lines.filter((l) => /^(fatal|error|remote):/i.test(l));
    return new GitError(
      (causes.length ? causes.slice(0, 3) : lines.slice(-3)).join(" ") || "git failed",
    );
  }

  async function dirSize(dir: string): Promise<number> {
    let total = 0;
    const entries = await readdir(dir, { withFileTypes: true, recursive: true }).catch(() => []);
    for (const e of entries) {
      if (e.isFile()) {
        const s = await stat(path.join(e.parentPath, e.name)).catch(() => null);
        total += s?.size ?? 0;
      }
    }
    return total;
  }

  /** Polls the clone's size while git runs and aborts it once it passes the limit. */
  async function withSizeGuard<T>(
    dir: string,
    maxBytes: number,
    run: (abort: AbortSignal) => Promise<T>,
  ): Promise<T> {
    const ctl = new AbortController();
    let over = false;
    const timer = setInterval(async () => {
      if ((await dirSize(dir)) > maxBytes) {
        over = true;
        ctl.abort();
      }
    }, 250);
    try {
      const result = await run(ctl.signal);
      if (over || (await dirSize(dir)) > maxBytes) throw new SizeLimitError(maxBytes);
      return result;
    } catch (err) {
      if (over) throw new SizeLimitError(maxBytes);
      throw err;
    } finally {
      clearInterval(timer);
    }
  }

  /**
   * The regular files of the tree at a commit with their sizes, read from the
   * tree objects alone: what an export would unpack, without unpacking it.
   */
  async function listTree(repoUuid: string, commit: string): Promise<TreeEntry[]> {
    if (!SHA_RE.test(commit)) throw new GitError("not a commit sha");
    const out = await runGitBuffer(
      dirFor(repoUuid),
      ["ls-tree", "-r", "-l", "-z", "--full-tree", commit],
      env(),
    );
    const entries: TreeEntry[] = [];
    for (const record of out.toString("utf8").split("\0")) {
      // "<mode> <type> <object> <size>\t<path>"; symlinks and submodules are not exported.
      const m = /^(100644|100755) blob ([0-9a-f]{40}) +(\d+)\t([\s\S]+)$/.exec(record);
      if (m?.[1] && m[2] && m[3] && m[4]) {
        const mode = Number.parseInt(m[1], 8);
        entries.push({ path: m[4], mode, size: Number(m[3]), object: m[2] });
      }
    }
    return entries;
  }

  return {
    dirFor,

    async exists(repoUuid: string): Promise<boolean> {
      return stat(path.join(dirFor(repoUuid), "HEAD")).then(
        () => true,
        () => false,
      );
    },

    /** Mirror-clones every branch and tag; a failed or oversized clone leaves nothing behind. */
    async clone(
      repoUuid: string,
      url: string,
      creds: GitCredentials | undefined,
      maxBytes: number,
      remote?: RemoteOptions,
    ): Promise<void> {
      const dir = dirFor(repoUuid);
      await gate.write(async () => {
        await mkdir(opts.repositoriesDir, { recursive: true, mode: 0o700 });
        await rm(dir, { recursive: true, force: true });
        try {
          await withSizeGuard(dir, maxBytes, (abort) =>
            git(undefined, creds, abort, remote)
              .clone(url, dir, ["--mirror", "--no-hardlinks", "--"])
              .then(() => undefined),
          );
        } catch (err) {
          await rm(dir, { recursive: true, force: true });
          if (err instanceof SizeLimitError) throw err;
          throw cleanError(err, creds);
        }
      });
    },

    /** Fetches every ref (pruning deleted ones) into an existing mirror. */
    async fetch(
      repoUuid: string,
      url: string,
      creds: GitCredentials | undefined,
      maxBytes: number,
      remote?: RemoteOptions,
    ): Promise<void> {
      const dir = dirFor(repoUuid);
      try {
        await gate.write(() =>
          withSizeGuard(dir, maxBytes, (abort) =>
            git(dir, creds, abort, remote)
              .raw([
                "fetch",
                "--prune",
                "--prune-tags",
                "--force",
                "--",
                url,
                "+refs/heads/*:refs/heads/*",
                "+refs/tags/*:refs/tags/*",
              ])
              .then(() => undefined),
          ),
        );
      } catch (err) {
        if (err instanceof SizeLimitError) throw err;
        throw cleanError(err, creds);
      }
    },

    async remove(repoUuid: string): Promise<void> {
      const dir = dirFor(repoUuid);
      await gate.write(() => rm(dir, { recursive: true, force: true }));
    },

    async size(repoUuid: string): Promise<number> {
      return dirSize(dirFor(repoUuid));
    },

    async versions(repoUuid: string): Promise<GitVersions> {
      const out = await git(dirFor(repoUuid)).raw([
        "for-each-ref",
        "--format=%(refname)%09%(objectname)%09%(*objectname)",
        "refs/heads",
        "refs/tags",
      ]);
      const branches: GitRef[] = [];
      const tags: GitRef[] = [];
      for (const line of out.split("\n")) {
        const [ref, obj, peeled] = line.split("\t");
        if (!ref || !obj) continue;
        // Annotated tags point at a tag object; the commit is the peeled one.
        const commit = peeled || obj;
        if (ref.startsWith("refs/heads/")) branches.push({ name: ref.slice(11), commit });
        else if (ref.startsWith("refs/tags/")) tags.push({ name: ref.slice(10), commit });
      }
      return { branches, tags };
    },

    /** The commit a branch, tag or sha names, or null. Names are checked by the caller. */
    async resolveCommit(repoUuid: string, rev: string): Promise<string | null> {
      if (rev.startsWith("-")) return null;
      try {
        const out = await git(dirFor(repoUuid)).raw([
          "rev-parse",
          "--verify",
          "--quiet",
          "--end-of-options",
          `${rev}^{commit}`,
        ]);
        const sha = out.trim();
        return SHA_RE.test(sha) ? sha : null;
      } catch {
        return null;
      }
    },

    async isAncestor(repoUuid: string, commit: string, branch: string): Promise<boolean> {
      if (!SHA_RE.test(commit)) return false;
      try {
        // Not `merge-base --is-ancestor`: its "no" is exit code 1 with empty stderr,
        // which simple-git resolves as success. The merge base equals the commit
        // exactly when the commit is an ancestor of (or is) the branch head.
        const base = await git(dirFor(repoUuid)).raw([
          "merge-base",
          "--end-of-options",
          commit,
          `refs/heads/${branch}`,
        ]);
        return base.trim() === commit;
      } catch {
        return false;
      }
    },

    /** A file's bytes at a commit, or null when the path is absent or not a regular file. */
    async readFile(repoUuid: string, commit: string, filePath: string): Promise<Buffer | null> {
      if (!SHA_RE.test(commit)) throw new GitError("not a commit sha");
      const dir = dirFor(repoUuid);
      const ls = await git(dir).raw(["ls-tree", "-z", "--full-tree", commit, "--", filePath]);
      const entry = ls.split("\0")[0];
      if (!entry || !/^100(644|755) blob /.test(entry)) return null;
      const sha = entry.split(/\s+/)[2];
      if (!sha) return null;
      return runGitBuffer(dir, ["cat-file", "blob", sha], env());
    },

    listTree,

    /**
     * The regular files of the tree at a commit (symlinks and submodules are left
     * out, so nothing can point outside the repository), or only those `keep`
     * accepts: a file left out is never read, so its size costs nothing.
     * Blobs are read as stored: no .gitattributes (export-subst could make a
     * small blob expand without bound, export-ignore hide what .pepeignore shows).
     */
    async exportTree(
      repoUuid: string,
      commit: string,
      keep: (path: string) => boolean = () => true,
    ): Promise<TreeFile[]> {
      const entries = (await listTree(repoUuid, commit)).filter((e) => keep(e.path));
      if (!entries.length) return [];
      const out = await runGitBuffer(
        dirFor(repoUuid),
        ["cat-file", "--batch"],
        env(),
        entries.map((e) => `${e.object}\n`).join(""),
      );
      // "<object> blob <size>\n<content>\n" per entry, in the order asked.
      const files: TreeFile[] = [];
      let at = 0;
      for (const e of entries) {
        const eol = out.indexOf(10, at);
        const header = out.subarray(at, eol).toString("latin1");
        if (header !== `${e.object} blob ${e.size}`) {
          throw new GitError(`cannot read ${e.path}: ${header}`);
        }
        files.push({
          path: e.path,
          mode: e.mode,
          content: out.subarray(eol + 1, eol + 1 + e.size),
        });
        at = eol + 1 + e.size + 1;
      }
      return files;
    },
  };
}

export class SizeLimitError extends GitError {
  constructor(maxBytes: number) {
    super(`repository is larger than the limit of ${Math.round(maxBytes / 1024 / 1024)} MB`);
  }
}

function runGitBuffer(
  cwd: string,
  args: string[],
  env: Record<string, string>,
  input?: string,
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = spawn("git", args, {
      cwd,
      env,
      stdio: [input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
    });
    if (input !== undefined) {
      child.stdin?.on("error", () => {});
      child.stdin?.end(input);
    }
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout?.on("data", (d: Buffer) => out.push(d));
    child.stderr?.on("data", (d: Buffer) => err.push(d));
    child.on("error", reject);
    child.on("close", (code) => {
      if (code === 0) resolve(Buffer.concat(out));
      else reject(new GitError(Buffer.concat(err).toString().trim() || `git ${args[0]} failed`));
    });
  });
}
