import type { z } from "@hono/zod-openapi";
import { eq } from "drizzle-orm";
import type { Principal } from "../access/principal.ts";
import { canManage } from "../access/visibility.ts";
import { unitNodes } from "../db/schema.ts";
import { requireUser } from "../http/auth.ts";
import { forbidden, notFound, unprocessable } from "../http/errors.ts";
import type { AppDeps } from "../http/types.ts";
import { findVisibleNode } from "../unit-nodes/unit-nodes.store.ts";
import {
  AGGREGATE_COLUMNS,
  aggregateLine,
  csvLine,
  RECORD_COLUMNS,
  readHistoryCsv,
  recordLine,
} from "./csv.ts";
import {
  type DataPipeConfig,
  type DataPipeError,
  MIN_DATE_MS,
  type PolicyType,
  parseDataPipeConfig,
  parseIsoDate,
} from "./data-pipe-config.ts";
import type { HistoryQuery } from "./history.schemas.ts";
import {
  aggregatesAfter,
  deleteHistory,
  downsampleAggregates,
  downsampleRecords,
  pageAggregates,
  pageRecordsText,
  type RangeFilter,
  recordsAfter,
  replaceAggregates,
  replaceRecords,
} from "./history.store.ts";

// The value history's operations behind the routes: who may do what, and the calls
// into the store and the writer. Reading follows reading the variable (Public even
// anonymously); changing config or data is for the unit's creator or an admin.

export type HistoryDeps = Pick<AppDeps, "database" | "config" | "events" | "history">;

const PARSED_CONFIGS_KEPT = 256;

const RELATIVE_UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 };

export function createHistoryService(deps: HistoryDeps) {
  const db = deps.database.db;
  const maxPayload = deps.config.mqttMaxPayloadBytes;
  const now = () => deps.history?.now() ?? Date.now();

  async function readable(p: Principal, uuid: string) {
    const found = await findVisibleNode(db, p, uuid);
    if (!found) throw notFound("unit node");
    return found;
  }

  async function manageable(p: Principal, uuid: string) {
    const user = requireUser(p);
    const found = await readable(user, uuid);
    if (!canManage(user, found.unit.creatorUuid)) {
      throw forbidden("only the unit's creator or an admin may do this");
    }
    return found;
  }

  // Reads parse the stored YAML on every request (its policy decides the query); parsing
  // costs more than the rest of a small read, so the last configs seen are kept, by text.
  const parsedConfigs = new Map<string, DataPipeConfig | undefined>();
  function storedConfig(yaml: string | null): DataPipeConfig | undefined {
    if (!yaml) return undefined;
    if (parsedConfigs.has(yaml)) return parsedConfigs.get(yaml);
    const parsed = parseDataPipeConfig(yaml, maxPayload);
    const config = parsed.ok ? parsed.config : undefined;
    if (parsedConfigs.size >= PARSED_CONFIGS_KEPT) {
      parsedConfigs.delete(parsedConfigs.keys().next().value as string);
    }
    parsedConfigs.set(yaml, config);
    return config;
  }

  /** The writer of this process now, every other process through the event. */
  async function pipeChanged(unitUuid: string, nodeUuid: string) {
    await deps.history?.reload(nodeUuid);
    deps.events.emit("unit-node.data-pipe-changed", { unitUuid, nodeUuid });
  }

  return {
    checkConfig(yaml: string): DataPipeError[] {
      const parsed = parseDataPipeConfig(yaml, maxPayload);
      return parsed.ok ? [] : parsed.errors;
    },

    /** Stores a valid config; returns its errors (and changes nothing) otherwise. */
    async setConfig(p: Principal, uuid: string, yaml: string): Promise<DataPipeError[]> {
      const { node, unit } = await manageable(p, uuid);
      const parsed = parseDataPipeConfig(yaml, maxPayload);
      if (!parsed.ok) return parsed.errors;
      await db.update(unitNodes).set({ dataPipeYaml: yaml }).where(eq(unitNodes.uuid, node.uuid));
      await pipeChanged(unit.uuid, node.uuid);
      return [];
    },

    async getConfig(p: Principal, uuid: string): Promise<string> {
      const { node } = await readable(p, uuid);
      if (!node.dataPipeYaml) throw notFound("data pipe config");
      return node.dataPipeYaml;
    },

    async deleteData(p: Principal, uuid: string): Promise<void> {
      const { node } = await manageable(p, uuid);
      await db.transaction((tx) => deleteHistory(tx, node.uuid));
      deps.history?.resetMemory(node.uuid);
    },

    async query(p: Principal, q: z.infer<typeof HistoryQuery>) {
      const { node } = await readable(p, q.uuid);
      const config = storedConfig(node.dataPipeYaml);
      const type = (q.type ?? config?.policy.type ?? "NRecords") as PolicyType;
      if (q.relative_time && q.start_create_datetime) {
        throw unprocessable("give relative_time or start_create_datetime, not both");
      }
      let from = q.start_create_datetime ? parseIsoDate(q.start_create_datetime) : undefined;
      const to = q.end_create_datetime ? parseIsoDate(q.end_create_datetime) : undefined;
      if (q.relative_time) {
        const amount = Number(q.relative_time.slice(0, -1));
        const span = amount * (RELATIVE_UNITS[q.relative_time.slice(-1)] ?? 1) * 1000;
        from = Math.max(MIN_DATE_MS, now() - span);
      }
      // Records of a TimeWindow older than the window are gone, even if not trimmed yet.
      if (type === "TimeWindow" && config?.policy.type === "TimeWindow") {
        from = Math.max(from ?? 0, now() - config.policy.windowSize * 1000 + 1);
      }
      const filter: RangeFilter = {
        nodeUuid: node.uuid,
        from,
        to,
        aggregationType: q.aggregation_type as RangeFilter["aggregationType"],
        windowSize: q.time_window_size,
      };
      const page = { order: q.order_by_create_date, limit: q.limit, offset: q.offset };
      if (type === "Aggregation") {
        if (q.max_points) {
          const rows = await downsampleAggregates(db, filter, q.max_points);
          if (q.order_by_create_date === "desc") rows.reverse();
          return { count: rows.length, pipe_data: rows.map(aggregateOut) };
        }
        const { count, rows } = await pageAggregates(db, filter, page);
        return { count, pipe_data: rows.map(aggregateOut) };
      }
      if (q.max_points) {
        const rows = await downsampleRecords(db, filter, q.max_points);
        if (q.order_by_create_date === "desc") rows.reverse();
        return { count: rows.length, pipe_data: rows.map(recordOut) };
      }
      const pieces = pageRecordsText(deps.database, filter, page);
      return { stream: await jsonPageStream(pieces) };
    },

    /** CSV of the variable's history, streamed in pages of the (node, time) index. */
    async exportCsv(p: Principal, uuid: string): Promise<ReadableStream<Uint8Array>> {
      const { node } = await readable(p, uuid);
      const aggregation = storedConfig(node.dataPipeYaml)?.policy.type === "Aggregation";
      const encoder = new TextEncoder();
      let after: { at: Date; id: number } | null = null;
      let headerSent = false;
      return new ReadableStream<Uint8Array>({
        async pull(controller) {
          if (!headerSent) {
            headerSent = true;
            controller.enqueue(
              encoder.encode(csvLine([...(aggregation ? AGGREGATE_COLUMNS : RECORD_COLUMNS)])),
            );
            return;
          }
          const rows = aggregation
            ? await aggregatesAfter(db, node.uuid, after, 2000)
            : await recordsAfter(db, node.uuid, after, 2000);
          const last = rows.at(-1);
          if (!last) {
            controller.close();
            return;
          }
          after = { at: last.at, id: last.id };
          const text = aggregation
            ? (rows as Awaited<ReturnType<typeof aggregatesAfter>>).map(aggregateLine).join("")
            : (rows as Awaited<ReturnType<typeof recordsAfter>>).map(recordLine).join("");
          controller.enqueue(encoder.encode(text));
        },
      });
    },

    /**
     * Replaces the variable's history (records, or closed windows for Aggregation) with the
     * CSV's rows: all checked first, then written in one transaction.
     */
    async importCsv(
      p: Principal,
      uuid: string,
      body: () => Promise<AsyncIterable<Uint8Array>>,
    ): Promise<number> {
      const { node } = await manageable(p, uuid);
      const config = storedConfig(node.dataPipeYaml);
      if (!config) throw unprocessable("set a data pipe config first: rows are checked against it");
      const parsed = await readHistoryCsv(await body(), config, node.uuid, now());
      await db.transaction((tx) =>
        parsed.kind === "records"
          ? replaceRecords(tx, node.uuid, parsed.rows)
          : replaceAggregates(tx, node.uuid, parsed.rows),
      );
      deps.history?.resetMemory(node.uuid);
      return parsed.rows.length;
    },
  };
}

export type HistoryService = ReturnType<typeof createHistoryService>;

function recordOut(r: { state: string; stateType: "Number" | "Text"; at: Date }) {
  return { state: r.state, state_type: r.stateType, create_datetime: r.at.toISOString() };
}

function aggregateOut(r: Awaited<ReturnType<typeof aggregatesAfter>>[number]) {
  return {
    state: r.state,
    aggregation_type: r.aggregationType,
    time_window_size: r.windowSize,
    create_datetime: r.at.toISOString(),
    start_window_datetime: r.start.toISOString(),
    end_window_datetime: r.end.toISOString(),
  };
}

/**
 * The records page's answer, streamed piece by piece as the store reads them (see
 * pageRecordsText). `count` comes last: only the end of the page tells it without a
 * count query, and members of a JSON object have no order. The first piece is read
 * before the answer starts, so a failing query is still an error status, not a cut body.
 */
async function jsonPageStream(
  pieces: AsyncGenerator<Uint8Array, number>,
): Promise<ReadableStream<Uint8Array>> {
  const first = await pieces.next();
  let pending: IteratorResult<Uint8Array, number> | null = first;
  let started = false;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const step = pending ?? (await pieces.next());
      pending = null;
      if (step.done) {
        if (!started) controller.enqueue(ARRAY_START);
        controller.enqueue(Buffer.from(`],"count":${step.value}}`));
        controller.close();
        return;
      }
      controller.enqueue(started ? COMMA : ARRAY_START);
      controller.enqueue(step.value);
      started = true;
    },
    async cancel() {
      // The client went away: the generator's next query is not run.
      await pieces.return(0);
    },
  });
}

const ARRAY_START = Buffer.from('{"pipe_data":[');
const COMMA = Buffer.from(",");
