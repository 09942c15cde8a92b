import { defineConfig } from "vitest/config";

// The whole suite runs twice: on embedded PGlite and on the real PostgreSQL
// (DATABASE_URL_TEST or 127.0.0.1:5432). A missing PostgreSQL fails the run.
// That includes test/e2e (the browser tests drive a real instance, so they too
// run on both databases) and test/web (the UI's form logic, plain Node).
export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 30_000,
    // Most tests wait on servers, brokers and browsers rather than compute: three
    // files at a time keep both cores busy (the default on 2 cores is one).
    maxWorkers: 3,
    hookTimeout: 120_000,
    // expect.poll waits for something to happen (a UI update, an MQTT message):
    // on a busy 2-core machine the 1 s default is too short to be a fair wait.
    expect: { poll: { timeout: 10_000, interval: 100 } },
    projects: [
      { extends: true, test: { name: "pglite", env: { PEPEUNIT_TEST_DB: "pglite" } } },
      { extends: true, test: { name: "postgres", env: { PEPEUNIT_TEST_DB: "postgres" } } },
    ],
  },
});
