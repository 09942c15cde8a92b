import { defineConfig } from "drizzle-kit";

// Migrations are only ever generated from src/db/schema.ts: `npm run db:generate`.
export default defineConfig({
  dialect: "postgresql",
  schema: "./src/db/schema.ts",
  out: "./migrations",
});
