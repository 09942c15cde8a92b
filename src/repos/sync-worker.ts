import type { AppDeps } from "../http/types.ts";

// TODO(placeholder): replaced by the real periodic sync worker.
export function createRepoSyncWorker(_deps: AppDeps) {
  return { start() {}, async stop() {} };
}
