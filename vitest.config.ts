import { defineConfig } from "vitest/config";

// The whole suite runs twice: on embedded PGlite and on the real PostgreSQL
// (DATABASE_URL_TEST or 127.0.0.1:5432). A missing PostgreSQL fails the run.
export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    projects: [
      { extends: true, test: { name: "pglite", env: { PEPEUNIT_TEST_DB: "pglite" } } },
      { extends: true, test: { name: "postgres", env: { PEPEUNIT_TEST_DB: "postgres" } } },
    ],
  },
});
