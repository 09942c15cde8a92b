import type { FieldErrors } from "../api-errors.ts";
import { EMAIL_RE, LOGIN_RE } from "./validation.ts";

export type RegisterValues = { login: string; email: string; password: string; confirm: string };
export type LoginValues = { login: string; password: string };
export type PasswordValues = { old_password: string; new_password: string; confirm: string };
export type ResetValues = { new_password: string; confirm: string };

export function validateRegister(v: RegisterValues): FieldErrors {
  const e: FieldErrors = {};
  if (!LOGIN_RE.test(v.login.trim()))
    e.login = "3–64 characters: letters, digits, dot, dash or underscore.";
  if (!EMAIL_RE.test(v.email.trim()) || v.email.trim().length > 254)
    e.email = "Enter a valid e-mail address.";
  if (v.password.length < 8) e.password = "At least 8 characters.";
  else if (v.password.length > 256) e.password = "At most 256 characters.";
  if (v.confirm !== v.password) e.confirm = "The passwords do not match.";
  return e;
}

export function registerPayload(v: RegisterValues) {
  return { login: v.login.trim(), email: v.email.trim(), password: v.password };
}

export function validateLogin(v: LoginValues): FieldErrors {
  const e: FieldErrors = {};
  if (!v.login.trim()) e.login = "Enter your login or e-mail.";
  if (!v.password) e.password = "Enter your password.";
  return e;
}

export function validatePasswordChange(v: PasswordValues): FieldErrors {
  const e: FieldErrors = {};
  if (!v.old_password) e.old_password = "Enter your current password.";
  if (v.new_password.length < 8) e.new_password = "At least 8 characters.";
  else if (v.new_password === v.old_password)
    e.new_password = "Choose a password different from the current one.";
  if (v.confirm !== v.new_password) e.confirm = "The passwords do not match.";
  return e;
}

/** The "forgot password" form: one field, login or e-mail. */
export function validateForgot(v: { login: string }): FieldErrors {
  return v.login.trim() ? {} : { login: "Enter your login or e-mail." };
}

/** A new password from a reset link. */
export function validateReset(v: ResetValues): FieldErrors {
  const e: FieldErrors = {};
  if (v.new_password.length < 8) e.new_password = "At least 8 characters.";
  else if (v.new_password.length > 256) e.new_password = "At most 256 characters.";
  if (v.confirm !== v.new_password) e.confirm = "The passwords do not match.";
  return e;
}

/** What to tell a person right after registering, from the created account's status. */
export function registrationOutcome(status: string): { kind: "active" | "info"; message: string } {
  switch (status) {
    case "PendingEmail":
      return {
        kind: "info",
        message: "Almost there: a verification e-mail has been sent. Open its link, then log in.",
      };
    case "PendingApproval":
      return {
        kind: "info",
        message:
          "Your account is awaiting approval by the instance admin. You can log in once approved.",
      };
    case "Blocked":
      return { kind: "info", message: "This account is blocked." };
    default:
      return { kind: "active", message: "Account created." };
  }
}
