import { describe, expect, it } from "vitest";
import {
  ApiError,
  errorText,
  fieldErrorsOf,
  isMissingEndpoint,
} from "../../web/src/lib/api-errors.ts";
import {
  registerPayload,
  registrationOutcome,
  validateForgot,
  validateLogin,
  validatePasswordChange,
  validateRegister,
  validateReset,
} from "../../web/src/lib/forms/account-forms.ts";
import {
  envEditsPayload,
  envEntries,
  isManagedKey,
  isSecretKey,
} from "../../web/src/lib/forms/env-form.ts";
import { hrefOf, parseHash } from "../../web/src/lib/routes.ts";
import { unitStateView } from "../../web/src/lib/unit-state.ts";

// Account forms, the env editor, API error mapping, deep-link parsing and the
// unit state read-out: the logic behind the pop-ups, without a browser.

describe("account forms", () => {
  it("validates registration like the API and trims what it sends", () => {
    const ok = {
      login: " maker ",
      email: "m@example.org",
      password: "12345678",
      confirm: "12345678",
    };
    expect(validateRegister(ok)).toEqual({});
    expect(registerPayload(ok)).toEqual({
      login: "maker",
      email: "m@example.org",
      password: "12345678",
    });
    const bad = validateRegister({ login: "ab", email: "nope", password: "short", confirm: "x" });
    expect(Object.keys(bad).sort()).toEqual(["confirm", "email", "login", "password"]);
    expect(validateLogin({ login: "", password: "" })).toEqual({
      login: expect.any(String),
      password: expect.any(String),
    });
  });

  it("checks a password change", () => {
    expect(
      validatePasswordChange({
        old_password: "old-pass",
        new_password: "new-pass-1",
        confirm: "new-pass-1",
      }),
    ).toEqual({});
    expect(
      validatePasswordChange({
        old_password: "same-pass",
        new_password: "same-pass",
        confirm: "same-pass",
      }).new_password,
    ).toMatch(/different/);
    expect(
      validatePasswordChange({ old_password: "", new_password: "short", confirm: "other" }),
    ).toEqual({
      old_password: expect.any(String),
      new_password: expect.any(String),
      confirm: expect.any(String),
    });
  });

  it("checks the forgotten-password and reset forms", () => {
    expect(validateForgot({ login: "  " })).toEqual({ login: expect.any(String) });
    expect(validateForgot({ login: "maker@example.org" })).toEqual({});
    expect(validateReset({ new_password: "12345678", confirm: "12345678" })).toEqual({});
    expect(validateReset({ new_password: "short", confirm: "other" })).toEqual({
      new_password: expect.any(String),
      confirm: expect.any(String),
    });
  });

  it("explains each registration outcome", () => {
    expect(registrationOutcome("PendingEmail").message).toMatch(/verification e-mail/);
    expect(registrationOutcome("PendingApproval").message).toMatch(/awaiting approval/);
    expect(registrationOutcome("Active").kind).toBe("active");
  });
});

describe("env editor", () => {
  const env = {
    PUC_WIFI_SSID: "",
    PUC_WIFI_PASS: "",
    PU_AUTH_TOKEN: "jwt",
    PU_MQTT_PORT: 1883,
    DEBUG: false,
    PEPEUNIT_URL: "http://x",
  };

  it("masks secrets and locks what the instance owns", () => {
    expect(isSecretKey("PUC_WIFI_PASS")).toBe(true);
    expect(isSecretKey("PU_AUTH_TOKEN")).toBe(true);
    expect(isSecretKey("PU_ENCRYPT_KEY")).toBe(true);
    expect(isSecretKey("PUC_WIFI_SSID")).toBe(false);
    expect(isManagedKey("PU_AUTH_TOKEN")).toBe(true);
    expect(isManagedKey("PEPEUNIT_URL")).toBe(true);
    // Generated but tunable: the API lets the user change it.
    expect(isManagedKey("PU_MQTT_PORT")).toBe(false);
    expect(isManagedKey("PUC_WIFI_PASS")).toBe(false);
  });

  it("sends only changed, editable keys with their JSON types", () => {
    const entries = envEntries(env);
    const text = Object.fromEntries(entries.map((e) => [e.key, e.value]));
    expect(envEditsPayload(entries, text)).toEqual({ edits: {}, errors: {} });
    const edited = {
      ...text,
      PUC_WIFI_SSID: "home",
      PU_MQTT_PORT: "8883",
      DEBUG: "true",
      PU_AUTH_TOKEN: "forged",
    };
    expect(envEditsPayload(entries, edited)).toEqual({
      edits: { PUC_WIFI_SSID: "home", PU_MQTT_PORT: 8883, DEBUG: true },
      errors: {},
    });
    const wrong = envEditsPayload(entries, { ...text, PU_MQTT_PORT: "many", DEBUG: "yes" });
    expect(Object.keys(wrong.errors).sort()).toEqual(["DEBUG", "PU_MQTT_PORT"]);
    expect(wrong.edits).toEqual({});
  });
});

describe("API errors", () => {
  it("turns a validation 422 into messages next to fields", () => {
    const detail = [
      { loc: ["name"], msg: "Too small" },
      { loc: ["credentials", "password"], msg: "Required" },
    ];
    expect(fieldErrorsOf(detail)).toEqual({
      name: "Too small",
      "credentials.password": "Required",
    });
    expect(errorText(detail)).toBe("name: Too small; credentials.password: Required");
    expect(errorText("units use this repo", 409)).toBe("units use this repo");
    expect(errorText(null, 403)).toMatch(/not allowed/);
  });

  it("tells a missing endpoint from a missing entity", () => {
    expect(isMissingEndpoint(new ApiError(404, "not found"))).toBe(true);
    expect(isMissingEndpoint(new ApiError(405, null))).toBe(true);
    expect(isMissingEndpoint(new ApiError(404, "unit not found"))).toBe(false);
  });
});

describe("deep links and unit state", () => {
  it("parses entity routes", () => {
    const u = "0b3f6f1e-1c2d-4e5f-8a9b-0c1d2e3f4a5b";
    expect(parseHash(`#/unit/${u}`)).toEqual({ name: "graph", focus: { kind: "unit", uuid: u } });
    expect(parseHash(`#/variable/${u.toUpperCase()}`)).toEqual({
      name: "graph",
      focus: { kind: "variable", uuid: u },
    });
    expect(parseHash("#/admin")).toEqual({ name: "admin" });
    expect(parseHash("#/unit/not-a-uuid")).toEqual({ name: "graph", focus: null });
    expect(parseHash("")).toEqual({ name: "graph", focus: null });
  });

  it("parses the password reset routes a mailed link opens", () => {
    const token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl-_";
    expect(parseHash(`#/reset/${token}`)).toEqual({ name: "reset", token });
    expect(hrefOf({ name: "reset", token })).toBe(`#/reset/${token}`);
    expect(parseHash("#/forgot")).toEqual({ name: "forgot" });
    expect(parseHash("#/reset/<script>")).toEqual({ name: "graph", focus: null });
  });

  it("reads a device state, tolerating wrong types", () => {
    const now = Date.parse("2026-01-01T12:00:00Z");
    const v = unitStateView(
      {
        last_state: { ifconfig: ["10.0.0.5"], millis: 90_061_000, mem_free: 1024, mem_alloc: 3072 },
        last_seen_datetime: "2026-01-01T11:59:00Z",
        current_commit: "abc",
      },
      now,
    );
    expect(v).toMatchObject({
      online: true,
      ip: "10.0.0.5",
      uptime: "1d 1h",
      memory: "1.0 KiB free of 4.0 KiB",
      commit: "abc",
    });
    const odd = unitStateView(
      {
        last_state: { ifconfig: "x", millis: "y" },
        last_seen_datetime: "2026-01-01T10:00:00Z",
        current_commit: null,
      },
      now,
    );
    expect(odd).toMatchObject({
      online: false,
      ip: null,
      uptime: null,
      deviceClock: null,
      memory: null,
      commit: null,
    });
    // The clients send their clock once it is set (epoch ms): not an uptime of 20787 days.
    const clock = Date.parse("2026-11-30T21:00:00Z");
    const synced = unitStateView(
      { last_state: { millis: clock }, last_seen_datetime: null, current_commit: null },
      now,
    );
    expect(synced).toMatchObject({ uptime: null, deviceClock: clock });
  });
});
