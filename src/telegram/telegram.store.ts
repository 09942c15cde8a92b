import { createHash, randomBytes } from "node:crypto";
import { and, eq, gt, lt } from "drizzle-orm";
import type { Principal } from "../access/principal.ts";
import type { DbLike } from "../db/database.ts";
import {
  type DownloadKind,
  downloadTokens,
  telegramLinkCodes,
  telegramLinks,
  users,
} from "../db/schema.ts";

export const LINK_CODE_TTL_MS = 10 * 60 * 1000;
export const DOWNLOAD_TTL_MS = 10 * 60 * 1000;

const sha256 = (text: string) => createHash("sha256").update(text).digest("base64url");

/** A new one-time code for `/start <code>`; the user's older codes stop working. */
export async function createLinkCode(db: DbLike, userUuid: string): Promise<string> {
  // Deep-link payloads allow A-Za-z0-9_- only, up to 64 characters.
  const code = randomBytes(12).toString("base64url");
  await db.delete(telegramLinkCodes).where(eq(telegramLinkCodes.userUuid, userUuid));
  await db.delete(telegramLinkCodes).where(lt(telegramLinkCodes.expiresAt, new Date()));
  await db.insert(telegramLinkCodes).values({
    codeHash: sha256(code),
    userUuid,
    expiresAt: new Date(Date.now() + LINK_CODE_TTL_MS),
  });
  return code;
}

/** Uses up a code: the user it was made for, or undefined when wrong, used or expired. */
export async function consumeLinkCode(db: DbLike, code: string): Promise<string | undefined> {
  const [row] = await db
    .delete(telegramLinkCodes)
    .where(
      and(
        eq(telegramLinkCodes.codeHash, sha256(code)),
        gt(telegramLinkCodes.expiresAt, new Date()),
      ),
    )
    .returning({ userUuid: telegramLinkCodes.userUuid });
  return row?.userUuid;
}

/** Links the chat to the user: a chat serves one user, a user has one chat. */
export async function linkChat(db: DbLike, userUuid: string, chatId: number): Promise<void> {
  await db.transaction(async (tx) => {
    await tx.delete(telegramLinks).where(eq(telegramLinks.chatId, chatId));
    await tx
      .insert(telegramLinks)
      .values({ userUuid, chatId })
      .onConflictDoUpdate({
        target: telegramLinks.userUuid,
        set: { chatId, createdAt: new Date() },
      });
  });
}

export async function unlinkUser(db: DbLike, userUuid: string): Promise<boolean> {
  const rows = await db
    .delete(telegramLinks)
    .where(eq(telegramLinks.userUuid, userUuid))
    .returning({ chatId: telegramLinks.chatId });
  return rows.length > 0;
}

export async function chatOfUser(db: DbLike, userUuid: string): Promise<number | undefined> {
  const [row] = await db
    .select({ chatId: telegramLinks.chatId })
    .from(telegramLinks)
    .where(eq(telegramLinks.userUuid, userUuid));
  return row?.chatId;
}

export type ChatUser = Extract<Principal, { kind: "user" }>;

/**
 * The user a chat acts for, as a principal with a session's rights (the chat was linked
 * from a logged-in session). A blocked or unconfirmed user acts for nobody.
 */
export async function userOfChat(db: DbLike, chatId: number): Promise<ChatUser | undefined> {
  const [row] = await db
    .select({ uuid: users.uuid, role: users.role, login: users.login, status: users.status })
    .from(telegramLinks)
    .innerJoin(users, eq(users.uuid, telegramLinks.userUuid))
    .where(eq(telegramLinks.chatId, chatId));
  return userPrincipal(row);
}

function userPrincipal(
  row: { uuid: string; role: ChatUser["role"]; login: string; status: string } | undefined,
): ChatUser | undefined {
  if (row?.status !== "Active") return undefined;
  return {
    kind: "user",
    uuid: row.uuid,
    role: row.role,
    login: row.login,
    scope: "session",
    tokenId: null,
  };
}

export async function createDownloadToken(
  db: DbLike,
  userUuid: string,
  unitUuid: string,
  kind: DownloadKind,
): Promise<string> {
  const token = randomBytes(24).toString("base64url");
  await db.delete(downloadTokens).where(lt(downloadTokens.expiresAt, new Date()));
  await db.insert(downloadTokens).values({
    tokenHash: sha256(token),
    userUuid,
    unitUuid,
    kind,
    expiresAt: new Date(Date.now() + DOWNLOAD_TTL_MS),
  });
  return token;
}

/** Uses up a download token: what it grants and to whom, or undefined. */
export async function consumeDownloadToken(db: DbLike, token: string) {
  const [row] = await db
    .delete(downloadTokens)
    .where(
      and(eq(downloadTokens.tokenHash, sha256(token)), gt(downloadTokens.expiresAt, new Date())),
    )
    .returning();
  if (!row) return undefined;
  const [user] = await db
    .select({ uuid: users.uuid, role: users.role, login: users.login, status: users.status })
    .from(users)
    .where(eq(users.uuid, row.userUuid));
  const principal = userPrincipal(user);
  return principal && { principal, unitUuid: row.unitUuid, kind: row.kind };
}
