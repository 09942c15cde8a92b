import { fileURLToPath } from "node:url";
import { svelte } from "@sveltejs/vite-plugin-svelte";
import { defineConfig } from "vite";

// The graph UI: built into web/dist, which the server serves at `/`
// (src/web/spa.routes.ts). `npm run web:dev` proxies the API to a local instance.
const root = fileURLToPath(new URL(".", import.meta.url));
const apiTarget = process.env.PEPEUNIT_DEV_API ?? "http://127.0.0.1:8080";

export default defineConfig({
  root,
  base: "/",
  plugins: [svelte()],
  build: {
    outDir: fileURLToPath(new URL("./dist", import.meta.url)),
    emptyOutDir: true,
    chunkSizeWarningLimit: 1500,
  },
  server: {
    proxy: {
      "/pepeunit": apiTarget,
      "/mqtt": { target: apiTarget.replace(/^http/, "ws"), ws: true },
    },
  },
});
