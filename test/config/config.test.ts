import { mkdtempSync, readFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../src/config.ts";

describe("config", () => {
  it("generates instance secrets once into the data dir and keeps them", () => {
    const dir = mkdtempSync(path.join(tmpdir(), "pepeunit-cfg-"));
    const first = loadConfig({ PEPEUNIT_DATA_DIR: dir });
    const file = path.join(dir, ".env");
    expect(readFileSync(file, "utf8")).toMatch(/BACK THIS FILE UP/);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const second = loadConfig({ PEPEUNIT_DATA_DIR: dir });
    expect(Buffer.from(second.secretKey)).toEqual(Buffer.from(first.secretKey));
    expect(Buffer.from(second.encryptKey)).toEqual(Buffer.from(first.encryptKey));
    expect(first.secretKey.length).toBe(32);
  });

  it("has the documented defaults", () => {
    const dir = mkdtempSync(path.join(tmpdir(), "pepeunit-cfg-"));
    const c = loadConfig({ PEPEUNIT_DATA_DIR: dir });
    expect(c.httpPort).toBe(8080);
    expect(c.mqttPort).toBe(1883);
    expect(c.maxRepoSizeBytes).toBe(10 * 1024 * 1024);
    expect(c.gitAllowLocal).toBe(false);
    expect(c.gitLocalRoots).toBeUndefined();
    expect(c.maxFirmwareSizeBytes).toBe(10 * 1024 * 1024);
    expect(c.databaseUrl).toBeUndefined();
  });

  it("starts no Telegram bot without a token, and reads its root and mode", () => {
    const dir = mkdtempSync(path.join(tmpdir(), "pepeunit-cfg-"));
    expect(loadConfig({ PEPEUNIT_DATA_DIR: dir, PEPEUNIT_TELEGRAM_BOT_TOKEN: "" }).telegram).toBe(
      undefined,
    );
    expect(
      loadConfig({ PEPEUNIT_DATA_DIR: dir, PEPEUNIT_TELEGRAM_BOT_TOKEN: "1:a" }).telegram,
    ).toEqual({ token: "1:a", apiRoot: "https://api.telegram.org", mode: "polling" });
    const own = loadConfig({
      PEPEUNIT_DATA_DIR: dir,
      PEPEUNIT_TELEGRAM_BOT_TOKEN: "1:a",
      PEPEUNIT_TELEGRAM_API_ROOT: "http://127.0.0.1:8081/",
      PEPEUNIT_TELEGRAM_MODE: "webhook",
    });
    expect(own.telegram).toMatchObject({ apiRoot: "http://127.0.0.1:8081", mode: "webhook" });
    expect(() => loadConfig({ PEPEUNIT_DATA_DIR: dir, PEPEUNIT_TELEGRAM_MODE: "push" })).toThrow(
      ConfigError,
    );
    expect(() =>
      loadConfig({ PEPEUNIT_DATA_DIR: dir, PEPEUNIT_TELEGRAM_API_ROOT: "ftp://x" }),
    ).toThrow(ConfigError);
  });

  it("reads the firmware limit and the local source roots", () => {
    const dir = mkdtempSync(path.join(tmpdir(), "pepeunit-cfg-"));
    const c = loadConfig({
      PEPEUNIT_DATA_DIR: dir,
      PEPEUNIT_MAX_FIRMWARE_SIZE_MB: "0.5",
      PEPEUNIT_GIT_LOCAL_ROOTS: "/srv/git, relative/dir,",
    });
    expect(c.maxFirmwareSizeBytes).toBe(512 * 1024);
    expect(c.gitLocalRoots).toEqual(["/srv/git", path.resolve("relative/dir")]);
  });

  it("refuses bad values with a readable message", () => {
    const dir = mkdtempSync(path.join(tmpdir(), "pepeunit-cfg-"));
    expect(() => loadConfig({ PEPEUNIT_DATA_DIR: dir, PEPEUNIT_HTTP_PORT: "eighty" })).toThrow(
      ConfigError,
    );
    expect(() => loadConfig({ PEPEUNIT_DATA_DIR: dir, DATABASE_URL: "mysql://x" })).toThrow(
      /DATABASE_URL/,
    );
    expect(() => loadConfig({ PEPEUNIT_DATA_DIR: dir, PEPEUNIT_GIT_ALLOW_LOCAL: "maybe" })).toThrow(
      ConfigError,
    );
  });
});
