import { api, fetchAll, unwrap } from "./api.ts";
import type { Board, BoardItemBody } from "./boards.ts";

// The boards endpoints, shared by the boards page and the variable pop-up's
// "Add to board…". Refusals throw an ApiError carrying the server's detail.

export async function listBoards(): Promise<Board[]> {
  return fetchAll(async (limit, offset) => {
    const page = await unwrap(api.GET("/boards", { params: { query: { limit, offset } } }));
    return { count: page.count, items: page.boards };
  });
}

export async function getBoard(uuid: string): Promise<Board> {
  return unwrap(api.GET("/boards/{uuid}", { params: { path: { uuid } } }));
}

export async function createBoard(name: string, items: BoardItemBody[] = []): Promise<Board> {
  return unwrap(api.POST("/boards", { body: { name, items } }));
}

export async function patchBoard(
  uuid: string,
  body: { name?: string; items?: BoardItemBody[] },
): Promise<Board> {
  return unwrap(api.PATCH("/boards/{uuid}", { params: { path: { uuid } }, body }));
}

export async function deleteBoard(uuid: string): Promise<void> {
  await unwrap(api.DELETE("/boards/{uuid}", { params: { path: { uuid } } }));
}

/** Sets an input exactly as its pop-up does (the server checks who may). */
export async function setInput(uuid: string, state: string): Promise<void> {
  await unwrap(
    api.PATCH("/unit_nodes/set_state_input/{uuid}", {
      params: { path: { uuid } },
      body: { state },
    }),
  );
}
