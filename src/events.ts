import { EventEmitter } from "node:events";

// Domain events: features announce what changed; the broker, federation and UI
// live-updates react here instead of being called from every route.
export type DomainEvents = {
  "unit.created": [{ unitUuid: string }];
  "unit.updated": [{ unitUuid: string; versionChanged: boolean }];
  "unit.deleted": [{ unitUuid: string }];
  "unit.token-rotated": [{ unitUuid: string }];
  "unit-nodes.changed": [{ unitUuid: string; added: string[]; removed: string[] }];
  "edge.created": [
    { edgeUuid: string; outputUuid: string; inputUuid: string; inputUnitUuid: string },
  ];
  "edge.deleted": [
    { edgeUuid: string; outputUuid: string; inputUuid: string; inputUnitUuid: string },
  ];
  "repo.synced": [{ repoUuid: string; changedBranches: string[] }];
};

export type EventBus = EventEmitter<DomainEvents>;

export function createEventBus(): EventBus {
  return new EventEmitter<DomainEvents>();
}
