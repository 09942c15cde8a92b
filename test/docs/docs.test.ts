import { cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildDocs, DOCS_DIR, refreshScreens, SCREENS_SUBDIR } from "../../docs/scripts/build.ts";
import {
  listOperations,
  operationTitle,
  renderApiPages,
} from "../../docs/scripts/openapi-to-myst.ts";
import { fetchOpenApiDocument } from "../../web/scripts/generate-api-types.ts";

// The documentation builds with no Sphinx warning (-W), has the pages the issue
// lists, documents every variable of .env.example, and its API reference has
// every operation of the instance's OpenAPI document. One build per run, from a
// copy of docs/ (the two database projects may run this file at the same time).

const ROOT = path.join(DOCS_DIR, "..");
const PAGES = [
  "install",
  "web-ui",
  "devices",
  "unit-repositories",
  "alerts-history",
  "operations",
  "cluster",
  "api/index",
];

type Doc = Parameters<typeof listOperations>[0];

const htmlText = (html: string) =>
  html
    .replace(/<[^>]+>/g, "")
    .replace(/&lt;/g, "<")
    .replace(/&gt;/g, ">")
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&amp;/g, "&");

describe("documentation", { timeout: 180_000 }, () => {
  let work = "";
  let outDir = "";
  let openapi: Doc = {};

  beforeAll(async () => {
    work = await mkdtemp(path.join(tmpdir(), "pepeunit-docs-"));
    const src = path.join(work, "docs");
    await cp(DOCS_DIR, src, {
      recursive: true,
      filter: (f) => !/[\\/]docs[\\/](_build|api)([\\/]|$)/.test(f.slice(ROOT.length)),
    });
    // conf.py takes the version from ../package.json.
    await cp(path.join(ROOT, "package.json"), path.join(work, "package.json"));
    openapi = (await fetchOpenApiDocument()) as Doc;
    ({ outDir } = await buildDocs({ srcDir: src, openapi }));
  }, 180_000);

  afterAll(async () => {
    if (work) await rm(work, { recursive: true, force: true });
  });

  const page = (name: string) => readFile(path.join(outDir, `${name}.html`), "utf8");
  async function expectPageToMention(name: string, words: string[]): Promise<void> {
    const text = htmlText(await page(name));
    expect(words.filter((w) => !text.includes(w))).toEqual([]);
  }

  it("builds every listed page, each in the table of contents", async () => {
    const index = await page("index");
    for (const name of PAGES) {
      expect(htmlText(await page(name)).length).toBeGreaterThan(500);
      expect(index).toContain(`href="${name}.html"`);
    }
  });

  it("the install page documents every variable of .env.example", async () => {
    const example = await readFile(path.join(ROOT, ".env.example"), "utf8");
    const vars = [...example.matchAll(/^#?\s*([A-Z][A-Z0-9_]*)=/gm)].map((m) => m[1] ?? "");
    expect(vars).toContain("PEPEUNIT_DOMAIN");
    const install = await readFile(path.join(DOCS_DIR, "install.md"), "utf8");
    // Each in the first column of a variables table.
    const missing = vars.filter((v) => !new RegExp(`^\\|\\s*\`${v}\`\\s*\\|`, "m").test(install));
    expect(missing).toEqual([]);
    // …and the three ways of running it, both databases and the proxy.
    await expectPageToMention("install", [
      "npm start",
      "docker compose",
      "systemctl",
      "PGlite",
      "PostgreSQL",
      "nginx",
    ]);
  });

  it("the guides cover each node type, the unit repository standard and operations", async () => {
    await expectPageToMention("web-ui", [
      "Access levels",
      "Repositories",
      "Units",
      "Inputs and outputs",
      "Links",
      "Admin console",
      "Federation",
    ]);
    await expectPageToMention("unit-repositories", [
      "env_example.json",
      "schema_example.json",
      ".pepeignore",
      "Commands",
      "OTA",
      "State",
      "Logs",
    ]);
    await expectPageToMention("devices", ["ESP32", "pepeunit_micropython_client", "npm run unit"]);
    await expectPageToMention("operations", [
      "npm run backup -- [--out FILE]",
      "npm run restore -- FILE [--force]",
      "docs/grafana/instance-dashboard.json",
      "docs/prometheus.yml",
      "Upgrades",
    ]);
    await expectPageToMention("cluster", [
      "docker compose --profile cluster up -d haproxy",
      "PEPEUNIT_CLUSTER_REDIS_URL",
      "PEPEUNIT_CLUSTER_NAMESPACE",
      "PEPEUNIT_NODE_NAME",
      "within 10 s",
      "Capacity model",
      "Known limits",
    ]);
  });

  it("the API reference has every operation of the OpenAPI document", async () => {
    const ops = listOperations(openapi);
    expect(ops.length).toBeGreaterThan(50);
    const files = (await readdir(path.join(outDir, "api"))).filter((f) => f.endsWith(".html"));
    const text = htmlText(
      (await Promise.all(files.map((f) => readFile(path.join(outDir, "api", f), "utf8")))).join(),
    );
    const missing = ops.map(operationTitle).filter((t) => !text.includes(t));
    expect(missing).toEqual([]);
  });

  it("shows only committed screenshots, each used by a page", async () => {
    const shots = (await readdir(path.join(DOCS_DIR, SCREENS_SUBDIR))).filter((f) =>
      f.endsWith(".png"),
    );
    const sources = await Promise.all(
      PAGES.filter((p) => !p.startsWith("api/"))
        .concat("index")
        .map((p) => readFile(path.join(DOCS_DIR, `${p}.md`), "utf8")),
    );
    const used = new Set(
      sources.flatMap((s) =>
        [...s.matchAll(/\(_static\/screens\/([^)]+\.png)\)/g)].map((m) => m[1]),
      ),
    );
    expect([...used].sort()).toEqual(shots.sort());
    const images = await readdir(path.join(outDir, "_images"));
    for (const f of used) expect(images).toContain(f);
  });

  it("--screens copies the e2e screenshots the pages use, and only those", async () => {
    const src = path.join(work, "screens-src");
    const e2e = path.join(work, "screens-e2e");
    await mkdir(path.join(src, SCREENS_SUBDIR), { recursive: true });
    await mkdir(e2e);
    await writeFile(path.join(src, SCREENS_SUBDIR, "graph.png"), "old");
    await writeFile(path.join(src, SCREENS_SUBDIR, "unit-popup.png"), "old");
    await writeFile(path.join(e2e, "graph.png"), "new");
    await writeFile(path.join(e2e, "phone-register.png"), "new");
    expect(await refreshScreens(src, e2e)).toEqual(["graph.png"]);
    expect(await readFile(path.join(src, SCREENS_SUBDIR, "graph.png"), "utf8")).toBe("new");
    expect(await readFile(path.join(src, SCREENS_SUBDIR, "unit-popup.png"), "utf8")).toBe("old");
    expect((await readdir(path.join(src, SCREENS_SUBDIR))).sort()).toEqual([
      "graph.png",
      "unit-popup.png",
    ]);
  });

  it("renders parameters, bodies and responses of an operation", () => {
    const pages = renderApiPages({
      openapi: "3.1.0",
      info: { title: "T", version: "1" },
      paths: {
        "/things/{uuid}": {
          patch: {
            tags: ["things"],
            summary: "Change a thing",
            parameters: [{ name: "uuid", in: "path", required: true, schema: { type: "string" } }],
            requestBody: {
              content: {
                "application/json": {
                  schema: {
                    type: "object",
                    properties: { name: { type: "string", maxLength: 9, description: "a | b" } },
                    required: ["name"],
                  },
                },
              },
            },
            responses: {
              "200": {
                description: "Changed",
                content: { "application/json": { schema: { $ref: "#/components/schemas/Thing" } } },
              },
            },
          },
        },
      },
      components: {
        schemas: { Thing: { type: "object", properties: { id: { type: "integer" } } } },
      },
    });
    expect([...pages.keys()].sort()).toEqual(["index.md", "schemas.md", "things.md"]);
    const things = pages.get("things.md") ?? "";
    expect(things).toContain("## `PATCH /things/{uuid}`");
    expect(things).toContain("| `uuid` | path | string | yes |  |");
    expect(things).toContain("| `name` | string | yes | a \\| b; maxLength 9 |");
    expect(things).toContain(
      "- **200** Changed — `application/json`: {ref}`Thing <api-schema-thing>`",
    );
    expect(pages.get("schemas.md")).toContain("(api-schema-thing)=\n## Thing");
  });
});
