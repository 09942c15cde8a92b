import type { Federation } from "@fedify/fedify";
import { disclosedActor, type LocalActor } from "./actors.ts";
import type { Core } from "./core.ts";
import type { FollowerRegistry } from "./followers.ts";
import type { RemoteEdgeRegistry } from "./links.ts";
import type { Outbox } from "./outbox.ts";

// The collections of every disclosed actor, as OrderedCollections paged by Fedify
// (the collection names its size and its first page; pages link to the next):
// - outbox: what it sent, newest first (see outbox.ts);
// - followers: how many follows it has, never who (an output's followers are other
//   instances reading its values); the pages are empty;
// - following: the remote outputs it takes values from (active links): for a unit
//   those into its inputs, for the instance (which sends every Follow) all of them;
//   an output follows nothing.
// Like the actor documents they need no signature: a collection exists where its
// actor does, and answers 404 where it does not.

const PAGE_SIZE = 20;
const NEWEST = "newest";

export function setCollectionDispatchers(
  fed: Federation<void>,
  core: Core,
  followers: FollowerRegistry,
  links: RemoteEdgeRegistry,
  outbox: Outbox,
): void {
  const disclosed = (identifier: string) => disclosedActor(core.db, identifier);

  fed
    .setOutboxDispatcher("/ap/actors/{identifier}/outbox", async (ctx, identifier, cursor) => {
      if (!(await disclosed(identifier))) return null;
      const before = cursor == null || cursor === NEWEST ? null : Number(cursor);
      if (before !== null && !Number.isSafeInteger(before)) return null;
      const page = await outbox.page(ctx, identifier, before, PAGE_SIZE);
      return { items: page.items, nextCursor: page.next === null ? null : String(page.next) };
    })
    .setFirstCursor(async (_ctx, identifier) => ((await disclosed(identifier)) ? NEWEST : null))
    .setCounter(async (_ctx, identifier) =>
      (await disclosed(identifier)) ? outbox.count(identifier) : null,
    );

  const followerCount = (actor: LocalActor, identifier: string): number => {
    if (actor.kind === "output") return [...followers.ofNode(identifier)].length;
    const all = followers.all();
    return actor.kind === "unit" ? all.filter((f) => f.unitUuid === identifier).length : all.length;
  };
  fed
    .setFollowersDispatcher("/ap/actors/{identifier}/followers", async (_ctx, identifier) =>
      (await disclosed(identifier)) ? { items: [] } : null,
    )
    .setFirstCursor(async (_ctx, identifier) => ((await disclosed(identifier)) ? "0" : null))
    .setCounter(async (_ctx, identifier) => {
      const actor = await disclosed(identifier);
      return actor ? followerCount(actor, identifier) : null;
    });

  const following = (actor: LocalActor, identifier: string): URL[] => {
    if (actor.kind === "output") return [];
    const active = links
      .all()
      .filter(
        (e) =>
          e.status === "Active" && (actor.kind === "instance" || e.inputUnitUuid === identifier),
      );
    return [...new Set(active.map((e) => e.remoteActor))].sort().map((href) => new URL(href));
  };
  fed
    .setFollowingDispatcher(
      "/ap/actors/{identifier}/following",
      async (_ctx, identifier, cursor) => {
        const actor = await disclosed(identifier);
        if (!actor) return null;
        const from = Number(cursor ?? "0");
        if (!Number.isSafeInteger(from) || from < 0) return null;
        const all = following(actor, identifier);
        const next = from + PAGE_SIZE < all.length ? String(from + PAGE_SIZE) : null;
        return { items: all.slice(from, from + PAGE_SIZE), nextCursor: next };
      },
    )
    .setFirstCursor(async (_ctx, identifier) => ((await disclosed(identifier)) ? "0" : null))
    .setCounter(async (_ctx, identifier) => {
      const actor = await disclosed(identifier);
      return actor ? following(actor, identifier).length : null;
    });
}
