import { mkdirSync, mkdtempSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import {
  CloneUrlError,
  type CloneUrlOptions,
  checkCloneTarget,
  checkCloneUrl,
  isNonPublicAddress,
  type LookupFn,
} from "../../src/repos/clone-url.ts";

// The checker alone. Name resolution is injected so these cases need no DNS;
// the API tests (url-safety.test.ts) run it with the real resolver.

const resolvesTo =
  (...addresses: string[]): LookupFn =>
  async () =>
    addresses.map((address) => ({ address, family: address.includes(":") ? 6 : 4 }));

const strict = { allowLocal: false, lookup: resolvesTo("93.184.215.14") };

async function refusal(url: string, opts: CloneUrlOptions = strict): Promise<string> {
  const err = await checkCloneUrl(url, opts).then(
    () => null,
    (e: unknown) => e,
  );
  expect(err, `${url} should be refused`).toBeInstanceOf(CloneUrlError);
  expect((err as CloneUrlError).status).toBe(422);
  return (err as CloneUrlError).message;
}

describe("clone URL checks", () => {
  it("classifies addresses", () => {
    const local = [
      "127.0.0.1",
      "127.1.2.3",
      "10.0.0.1",
      "172.16.0.1",
      "172.31.255.255",
      "192.168.1.1",
      "169.254.169.254",
      "0.0.0.0",
      "100.64.0.1",
      "224.0.0.1",
      "255.255.255.255",
      "::",
      "::1",
      "fe80::1",
      "fd00::1",
      "fc00::5",
      "::ffff:127.0.0.1",
      "::ffff:7f00:1",
      "::ffff:10.0.0.1",
      "64:ff9b::a00:1",
      "ff02::1",
      "not-an-ip",
    ];
    for (const a of local) expect(isNonPublicAddress(a), a).toBe(true);
    const open = ["8.8.8.8", "172.32.0.1", "93.184.215.14", "2606:4700::1111", "::ffff:8.8.8.8"];
    for (const a of open) expect(isNonPublicAddress(a), a).toBe(false);
  });

  it("passes a public https URL and returns the normalised form", async () => {
    expect(await checkCloneUrl("https://git.example.org/maker/unit.git", strict)).toBe(
      "https://git.example.org/maker/unit.git",
    );
    expect(await checkCloneUrl("HTTP://Git.Example.org:8080/x", strict)).toBe(
      "http://git.example.org:8080/x",
    );
  });

  it("refuses a host when ANY of its addresses is local", async () => {
    const msg = await refusal("https://mixed.example/x.git", {
      allowLocal: false,
      lookup: resolvesTo("93.184.215.14", "10.1.2.3"),
    });
    expect(msg).toContain("10.1.2.3");
    await refusal("https://v6.example/x.git", {
      allowLocal: false,
      lookup: resolvesTo("2606:4700::1111", "::1"),
    });
    const unresolvable = await refusal("https://nowhere.example/x.git", {
      allowLocal: false,
      lookup: async () => {
        throw new Error("ENOTFOUND");
      },
    });
    expect(unresolvable).toContain("cannot resolve");
  });

  it("refuses local addresses, however written", async () => {
    for (const url of [
      "http://127.0.0.1/x.git",
      "http://[::1]/x.git",
      "http://0.0.0.0/x.git",
      "http://2130706433/x.git",
      "http://0x7f.1/x.git",
      "http://169.254.169.254/latest/meta-data",
      "http://[::ffff:127.0.0.1]/x.git",
      "http://[fe80::1]/x.git",
    ]) {
      expect(await refusal(url)).toMatch(/local or private/);
    }
    // A name that resolves to loopback, through the real resolver.
    expect(await refusal("http://localhost/x.git", { allowLocal: false })).toMatch(
      /local or private/,
    );
  });

  it("refuses other schemes, transports, options, credentials and odd characters", async () => {
    expect(await refusal("ext::sh -c touch% /tmp/pwned")).toMatch(/whitespace|transport/);
    expect(await refusal("ext::sh")).toContain("transport");
    expect(await refusal("fd::17")).toContain("transport");
    expect(await refusal("https::example.org/x")).toContain("transport");
    expect(await refusal("--upload-pack=touch%20/tmp/pwned")).toContain("'-'");
    expect(await refusal("-uhttps://example.org/x")).toContain("'-'");
    expect(await refusal("https://user:pw@example.org/x.git")).toContain("credentials field");
    expect(await refusal("https://token@example.org/x.git")).toContain("credentials field");
    expect(await refusal("ftp://example.org/x.git")).toContain("only https:// and http://");
    expect(await refusal("git://example.org/x.git")).toContain("only https:// and http://");
    expect(await refusal("ssh://git@example.org/x.git")).toMatch(/credentials|only https/);
    expect(await refusal("file:///tmp/x")).toContain("file://");
    expect(await refusal("/tmp/x")).toContain("not a valid URL");
    expect(await refusal("https://exa mple.org/x")).toContain("whitespace");
    expect(await refusal("https://example.org/x\n")).toContain("whitespace");
    expect(await refusal("https://example.org/\u0000")).toContain("control");
    expect(await refusal("https://example.org\\@127.0.0.1/x")).toContain("backslash");
    expect(await refusal(`https://example.org/${"a".repeat(2048)}`)).toContain("2048");
  });

  it("lets local sources through only when the instance allows them", async () => {
    const open = { allowLocal: true };
    expect(await checkCloneUrl("file:///tmp/fixture", open)).toBe("file:///tmp/fixture");
    expect(await checkCloneUrl("http://127.0.0.1:9418/x.git", open)).toBe(
      "http://127.0.0.1:9418/x.git",
    );
    // The rest stays refused even then.
    await refusal("ext::sh", open);
    await refusal("https://u:p@127.0.0.1/x", open);
    await refusal("file://otherhost/tmp/x", open);
  });

  it("refuses NAT64, 6to4 and Teredo addresses, which can reach an internal IPv4 host", async () => {
    for (const a of [
      "64:ff9b:1::7f00:1", // local-use NAT64 of 127.0.0.1
      "64:ff9b:1:ffff::a00:1",
      "64:ff9b::7f00:1",
      "2002:7f00:1::1", // 6to4 via 127.0.0.1
      "2002:808:808::1", // 6to4 even via a public gateway: the range is refused outright
      "2001:0:4136:e378:8000:63bf:3fff:fdd2", // Teredo
    ]) {
      expect(isNonPublicAddress(a), a).toBe(true);
    }
    expect(isNonPublicAddress("2001:4860:4860::8888")).toBe(false);
    expect(await refusal("http://[64:ff9b:1::7f00:1]/x")).toMatch(/local or private/);
    expect(await refusal("http://[2002:7f00:1::1]/x")).toMatch(/local or private/);
    await refusal("https://rebind.example/x.git", {
      allowLocal: false,
      lookup: resolvesTo("64:ff9b:1::a00:1"),
    });
  });

  it("pins git's connection to exactly the addresses it checked", async () => {
    const target = await checkCloneTarget("https://git.example.org/a.git", {
      allowLocal: false,
      lookup: resolvesTo("93.184.215.14", "2606:4700::1111"),
    });
    expect(target).toEqual({
      url: "https://git.example.org/a.git",
      gitUrl: "https://git.example.org/a.git",
      resolve: "git.example.org:443:93.184.215.14,[2606:4700::1111]",
    });
    const onPort = await checkCloneTarget("http://git.example.org:8080/a.git", strict);
    expect(onPort.resolve).toBe("git.example.org:8080:93.184.215.14");
    // An address literal is connected to as written.
    expect((await checkCloneTarget("http://93.184.215.14/a.git", strict)).resolve).toBeUndefined();
  });

  it("keeps file:// out of the instance's own directories, through symlinks too", async () => {
    const base = mkdtempSync(path.join(tmpdir(), "pepeunit-clone-url-"));
    const repositories = path.join(base, "repositories");
    const data = path.join(base, "data");
    const outside = path.join(base, "outside");
    for (const d of [repositories, data, outside]) mkdirSync(d);
    mkdirSync(path.join(repositories, "private-repo"));
    symlinkSync(path.join(repositories, "private-repo"), path.join(outside, "link"));
    symlinkSync(repositories, path.join(base, "repos-link"));
    const opts = { allowLocal: true, refusedDirs: [repositories, data] };
    for (const url of [
      `file://${repositories}/private-repo`,
      `file://${repositories}`,
      `file://${data}/pglite`,
      `file://${outside}/link`, // a symlink into the clones
      `file://${base}/repos-link/private-repo`,
      `file://${outside}/../repositories/private-repo`,
    ]) {
      expect(await refusal(url, opts), url).toContain("own data or repositories");
    }
    expect(await refusal(`file://${outside}/%2e%2e/data`, opts)).toContain("plain path");
    mkdirSync(path.join(data, "..dots"));
    expect(await refusal(`file://${data}/..dots`, opts)).toContain("own data");
    // Elsewhere is fine, and git is given the real path that was checked.
    mkdirSync(path.join(outside, "fixture"));
    symlinkSync(path.join(outside, "fixture"), path.join(base, "fixture-link"));
    expect(await checkCloneTarget(`file://${base}/fixture-link`, opts)).toEqual({
      url: `file://${base}/fixture-link`,
      gitUrl: `file://${outside}/fixture`,
    });
    // PEPEUNIT_GIT_LOCAL_ROOTS narrows file:// to its directories.
    const rooted = { ...opts, localRoots: [outside] };
    expect((await checkCloneTarget(`file://${outside}/fixture`, rooted)).url).toBe(
      `file://${outside}/fixture`,
    );
    expect(await refusal(`file://${base}`, rooted)).toContain("PEPEUNIT_GIT_LOCAL_ROOTS");
  });
});
