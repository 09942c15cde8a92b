import { z } from "@hono/zod-openapi";
import { NotificationsOut } from "../alerts/alerts.schemas.ts";
import type { users } from "../db/schema.ts";

export const LoginSchema = z
  .string()
  .regex(/^[A-Za-z0-9_.-]{3,64}$/, "3-64 characters: letters, digits, _ . -")
  .openapi({ example: "maker" });
export const PasswordSchema = z.string().min(8, "at least 8 characters").max(256);

export const RegisterBody = z
  .object({ login: LoginSchema, email: z.email().max(254), password: PasswordSchema })
  .openapi("RegisterUser");

export const AuthBody = z
  .object({
    login: z.string().min(1).max(254).openapi({ description: "login or e-mail" }),
    password: z.string().min(1).max(256),
  })
  .openapi("AuthUser");

export const ChangePasswordBody = z
  .object({ old_password: z.string().min(1).max(256), new_password: PasswordSchema })
  .openapi("ChangePassword");

export const PasswordResetBody = z
  .object({
    login: z.string().min(1).max(254).openapi({ description: "login or e-mail" }),
  })
  .openapi("PasswordResetRequest");

export const PasswordResetConfirmBody = z
  .object({ token: z.string().min(1).max(2048), new_password: PasswordSchema })
  .openapi("PasswordResetConfirm");

export const ResetLinkOut = z.object({ link: z.string() }).openapi("PasswordResetLink");

export const DetailOut = z.object({ detail: z.string() });

export const UserRoleSchema = z.enum(["Admin", "User"]);
export const UserStatusSchema = z.enum(["Active", "PendingEmail", "PendingApproval", "Blocked"]);

export const UserOut = z
  .object({
    uuid: z.uuid(),
    login: z.string(),
    email: z.string(),
    role: UserRoleSchema,
    status: UserStatusSchema,
    create_datetime: z.string(),
  })
  .openapi("User");

/** GET /users/me: the user, their notification switches (src/alerts/) and how they are reached. */
export const MeOut = UserOut.extend({
  notifications: NotificationsOut,
  telegram_linked: z
    .boolean()
    .openapi({ description: "a Telegram chat is linked (src/telegram/)" }),
}).openapi("Me");

export const TokenOut = z.object({ token: z.string() }).openapi("Token");

export function toUserOut(u: typeof users.$inferSelect): z.infer<typeof UserOut> {
  return {
    uuid: u.uuid,
    login: u.login,
    email: u.email,
    role: u.role,
    status: u.status,
    create_datetime: u.createdAt.toISOString(),
  };
}
