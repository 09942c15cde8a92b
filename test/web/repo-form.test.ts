import { describe, expect, it } from "vitest";
import {
  createRepoPayload,
  emptyRepoForm,
  repoFormFrom,
  syncPeriodOf,
  syncSeconds,
  updateRepoPayload,
  validateRepoForm,
} from "../../web/src/lib/forms/repo-form.ts";

// The repo_unit form's logic: what it refuses before a round trip, and the
// exact JSON it sends to POST /repos and PATCH /repos/{uuid}.

const repo = {
  name: "thermo",
  url: "https://git.example.org/me/thermo.git",
  is_private: false,
  visibility: "Public" as const,
  sync_interval_s: 86_400,
  auto_sync: true,
};

describe("repo form", () => {
  it("requires a name and a clone URL, and credentials only when private", () => {
    const v = emptyRepoForm();
    expect(validateRepoForm(v, "create")).toEqual({
      name: expect.any(String),
      url: expect.any(String),
    });
    const priv = { ...v, name: "x", url: "https://h/r.git", is_private: true };
    expect(Object.keys(validateRepoForm(priv, "create")).sort()).toEqual(["password", "username"]);
    expect(validateRepoForm({ ...priv, username: "me", password: "tok" }, "create")).toEqual({});
    expect(validateRepoForm({ ...v, name: "x", url: "not a url" }, "create").url).toMatch(
      /clone URL/,
    );
    expect(
      validateRepoForm({ ...v, name: "x", url: "git@github.com:me/unit.git" }, "create"),
    ).toEqual({});
    expect(
      validateRepoForm({ ...v, name: "y".repeat(101), url: "https://h/r.git" }, "create").name,
    ).toMatch(/100/);
  });

  it("bounds the sync period to one minute … one year", () => {
    const base = { ...emptyRepoForm(), name: "x", url: "https://h/r.git" };
    expect(validateRepoForm({ ...base, sync_every: 0 }, "create").sync_every).toBeDefined();
    expect(
      validateRepoForm({ ...base, sync_every: 366, sync_unit: "days" }, "create").sync_every,
    ).toMatch(/year/);
    expect(validateRepoForm({ ...base, sync_every: 1, sync_unit: "minutes" }, "create")).toEqual(
      {},
    );
    expect(syncSeconds({ sync_every: 90, sync_unit: "minutes" })).toBe(5400);
    expect(syncPeriodOf(86_400)).toEqual({ sync_every: 1, sync_unit: "days" });
    expect(syncPeriodOf(7200)).toEqual({ sync_every: 2, sync_unit: "hours" });
    expect(syncPeriodOf(5400)).toEqual({ sync_every: 90, sync_unit: "minutes" });
  });

  it("builds the create payload with every API field; credentials only for a private remote", () => {
    const v = {
      ...emptyRepoForm(),
      name: " thermo ",
      url: " https://h/r.git ",
      visibility: "Internal" as const,
      sync_every: 2,
      sync_unit: "hours" as const,
      manual_only: true,
      username: "ignored",
    };
    expect(createRepoPayload(v)).toEqual({
      name: "thermo",
      url: "https://h/r.git",
      is_private: false,
      visibility: "Internal",
      sync_interval_s: 7200,
      auto_sync: false,
    });
    expect(
      createRepoPayload({ ...v, is_private: true, username: "me", password: "tok" }),
    ).toMatchObject({
      is_private: true,
      credentials: { username: "me", password: "tok" },
    });
  });

  it("sends only what changed when editing, never the URL; empty credentials keep the stored ones", () => {
    const form = repoFormFrom(repo);
    expect(updateRepoPayload(form, repo)).toEqual({});
    expect(
      updateRepoPayload(
        { ...form, name: "renamed", url: "https://other/x.git", manual_only: true },
        repo,
      ),
    ).toEqual({
      name: "renamed",
      auto_sync: false,
    });
    const priv = { ...repo, is_private: true };
    const privForm = repoFormFrom(priv);
    expect(privForm.password).toBe("");
    expect(validateRepoForm(privForm, "edit")).toEqual({});
    expect(validateRepoForm({ ...privForm, username: "me" }, "edit").password).toBeDefined();
    expect(updateRepoPayload({ ...privForm, username: "me", password: "new" }, priv)).toEqual({
      credentials: { username: "me", password: "new" },
    });
  });
});
