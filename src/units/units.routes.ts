import { createRouter } from "../http/openapi.ts";
import type { AppDeps } from "../http/types.ts";

// TODO(placeholder): replaced by the feature's real routes.
export function unitsRoutes(_deps: AppDeps) {
  return createRouter();
}
