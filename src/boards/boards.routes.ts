import { createRoute, z } from "@hono/zod-openapi";
import { eq } from "drizzle-orm";
import { boards } from "../db/schema.ts";
import { requireUser } from "../http/auth.ts";
import { notFound } from "../http/errors.ts";
import {
  createRouter,
  errorResponses,
  jsonBody,
  jsonResponse,
  Pagination,
  UuidParam,
} from "../http/openapi.ts";
import type { AppDeps } from "../http/types.ts";
import { BoardOut, CreateBoardBody, UpdateBoardBody } from "./boards.schemas.ts";
import { createBoard, toBoardOut, updateBoard } from "./boards.service.ts";
import { findOwnBoard, listOwnBoards } from "./boards.store.ts";

// Boards: a user's named selection of variables, shown by the Telegram bot as one
// message (read-outs and buttons) and editable here. Each user sees only their own.

const tags = ["boards"];

export function boardsRoutes(deps: AppDeps) {
  const db = deps.database.db;
  const app = createRouter();

  app.openapi(
    createRoute({
      method: "post",
      path: "/",
      tags,
      summary: "Create a board of the caller's visible variables",
      request: { body: jsonBody(CreateBoardBody) },
      responses: { 201: jsonResponse(BoardOut, "The board"), ...errorResponses(401, 403, 422) },
    }),
    async (c) => {
      const user = requireUser(c.get("principal"));
      const board = await createBoard(db, user, c.req.valid("json"));
      return c.json(await toBoardOut(db, user, board), 201);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/",
      tags,
      summary: "The caller's boards, newest first",
      request: { query: Pagination },
      responses: {
        200: jsonResponse(z.object({ count: z.number(), boards: z.array(BoardOut) }), "Boards"),
        ...errorResponses(401, 403, 422),
      },
    }),
    async (c) => {
      const user = requireUser(c.get("principal"));
      const { count, rows } = await listOwnBoards(db, user.uuid, c.req.valid("query"));
      const out = await Promise.all(rows.map((b) => toBoardOut(db, user, b)));
      return c.json({ count, boards: out }, 200);
    },
  );

  async function loadOwn(user: { uuid: string }, uuid: string) {
    const board = await findOwnBoard(db, user.uuid, uuid);
    if (!board) throw notFound("board");
    return board;
  }

  app.openapi(
    createRoute({
      method: "get",
      path: "/{uuid}",
      tags,
      summary: "One of the caller's boards",
      request: { params: UuidParam },
      responses: { 200: jsonResponse(BoardOut, "The board"), ...errorResponses(401, 404, 422) },
    }),
    async (c) => {
      const user = requireUser(c.get("principal"));
      const board = await loadOwn(user, c.req.valid("param").uuid);
      return c.json(await toBoardOut(db, user, board), 200);
    },
  );

  app.openapi(
    createRoute({
      method: "patch",
      path: "/{uuid}",
      tags,
      summary: "Rename a board or replace its items",
      request: { params: UuidParam, body: jsonBody(UpdateBoardBody) },
      responses: {
        200: jsonResponse(BoardOut, "The board"),
        ...errorResponses(401, 403, 404, 422),
      },
    }),
    async (c) => {
      const user = requireUser(c.get("principal"));
      const board = await loadOwn(user, c.req.valid("param").uuid);
      const updated = await updateBoard(db, user, board, c.req.valid("json"));
      return c.json(await toBoardOut(db, user, updated), 200);
    },
  );

  app.openapi(
    createRoute({
      method: "delete",
      path: "/{uuid}",
      tags,
      summary: "Delete one of the caller's boards",
      request: { params: UuidParam },
      responses: { 204: { description: "Deleted" }, ...errorResponses(401, 403, 404, 422) },
    }),
    async (c) => {
      const user = requireUser(c.get("principal"));
      const board = await loadOwn(user, c.req.valid("param").uuid);
      await db.delete(boards).where(eq(boards.uuid, board.uuid));
      return c.body(null, 204);
    },
  );

  return app;
}
