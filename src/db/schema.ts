import { sql } from "drizzle-orm";
import {
  bigserial,
  boolean,
  index,
  integer,
  jsonb,
  pgTable,
  text,
  timestamp,
  uniqueIndex,
  uuid,
} from "drizzle-orm/pg-core";

// One PostgreSQL-dialect schema for PGlite and PostgreSQL alike; no extensions.
// Uuids are made by the application (crypto.randomUUID) so no SQL function is needed.

const createdAt = () => timestamp("created_at", { withTimezone: true }).notNull().defaultNow();
const updatedAt = () => timestamp("updated_at", { withTimezone: true }).notNull().defaultNow();

/** Visibility of every entity, ordered Private < Internal < Public. */
export type Visibility = "Public" | "Internal" | "Private";
export type UserRole = "Admin" | "User";
export type UserStatus = "Active" | "PendingEmail" | "PendingApproval" | "Blocked";
export type RegistrationMode = "Open" | "EmailVerification" | "ManualApproval" | "Closed";
export type SyncStatus = "Pending" | "Syncing" | "Synced" | "Error";
export type UnitNodeType = "Input" | "Output";
export type UpdateStatus = "RequestSent" | "Success" | "Error";

/** A single row (id = 1) of settings the admin changes at run time. */
export const instanceSettings = pgTable("instance_settings", {
  id: integer("id").primaryKey().default(1),
  registrationMode: text("registration_mode").$type<RegistrationMode>().notNull().default("Open"),
  updatedAt: updatedAt(),
});

export const users = pgTable(
  "users",
  {
    uuid: uuid("uuid").primaryKey(),
    login: text("login").notNull(),
    email: text("email").notNull(),
    passwordHash: text("password_hash").notNull(),
    role: text("role").$type<UserRole>().notNull().default("User"),
    status: text("status").$type<UserStatus>().notNull().default("Active"),
    // Bumped on password change, block and delete: every token issued before is refused.
    tokenVersion: integer("token_version").notNull().default(0),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    uniqueIndex("users_login_unique").on(sql`lower(${t.login})`),
    uniqueIndex("users_email_unique").on(sql`lower(${t.email})`),
  ],
);

export const repos = pgTable(
  "repos",
  {
    uuid: uuid("uuid").primaryKey(),
    creatorUuid: uuid("creator_uuid")
      .notNull()
      .references(() => users.uuid, { onDelete: "cascade" }),
    name: text("name").notNull(),
    url: text("url").notNull(),
    isPrivate: boolean("is_private").notNull().default(false),
    // AES-GCM text form (device-protocol §8) of {"username","password"}; never returned.
    credentialsEnc: text("credentials_enc"),
    visibility: text("visibility").$type<Visibility>().notNull().default("Public"),
    syncIntervalS: integer("sync_interval_s").notNull().default(86400),
    autoSync: boolean("auto_sync").notNull().default(true),
    defaultBranch: text("default_branch"),
    syncStatus: text("sync_status").$type<SyncStatus>().notNull().default("Pending"),
    syncError: text("sync_error"),
    lastSyncedAt: timestamp("last_synced_at", { withTimezone: true }),
    nextSyncAt: timestamp("next_sync_at", { withTimezone: true }),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    index("repos_creator_idx").on(t.creatorUuid),
    index("repos_next_sync_idx").on(t.nextSyncAt),
  ],
);

export const units = pgTable(
  "units",
  {
    uuid: uuid("uuid").primaryKey(),
    creatorUuid: uuid("creator_uuid")
      .notNull()
      .references(() => users.uuid, { onDelete: "cascade" }),
    // restrict: a repo cannot be deleted while units use it (the API answers 409 first).
    repoUuid: uuid("repo_uuid")
      .notNull()
      .references(() => repos.uuid, { onDelete: "restrict" }),
    name: text("name").notNull(),
    visibility: text("visibility").$type<Visibility>().notNull().default("Public"),
    followRepo: boolean("follow_repo").notNull().default(true),
    branch: text("branch").notNull(),
    tag: text("tag"),
    commit: text("commit").notNull(),
    // Mixed into the unit JWT's signing key; a new salt revokes the old token.
    tokenSalt: text("token_salt").notNull(),
    // AES-GCM text form of the stored env.json object.
    envEnc: text("env_enc").notNull(),
    stateStorageEnc: text("state_storage_enc"),
    // Device plane: last reported state and OTA status.
    lastState: jsonb("last_state"),
    lastSeenAt: timestamp("last_seen_at", { withTimezone: true }),
    currentCommit: text("current_commit"),
    updateStatus: text("update_status").$type<UpdateStatus>(),
    updateError: text("update_error"),
    updateRequestedAt: timestamp("update_requested_at", { withTimezone: true }),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    uniqueIndex("units_name_unique").on(t.name),
    index("units_repo_idx").on(t.repoUuid),
    index("units_creator_idx").on(t.creatorUuid),
  ],
);

/** A unit's variable: one node of the graph per input_topic / output_topic name. */
export const unitNodes = pgTable(
  "unit_nodes",
  {
    uuid: uuid("uuid").primaryKey(),
    unitUuid: uuid("unit_uuid")
      .notNull()
      .references(() => units.uuid, { onDelete: "cascade" }),
    type: text("type").$type<UnitNodeType>().notNull(),
    topicName: text("topic_name").notNull(),
    visibility: text("visibility").$type<Visibility>().notNull().default("Public"),
    isRewritableInput: boolean("is_rewritable_input").notNull().default(false),
    lastValue: text("last_value"),
    lastValueAt: timestamp("last_value_at", { withTimezone: true }),
    createdAt: createdAt(),
  },
  (t) => [uniqueIndex("unit_nodes_unit_type_name_unique").on(t.unitUuid, t.type, t.topicName)],
);

/** A data link: an output variable feeding an input variable. */
export const unitNodeEdges = pgTable(
  "unit_node_edges",
  {
    uuid: uuid("uuid").primaryKey(),
    outputUuid: uuid("output_uuid")
      .notNull()
      .references(() => unitNodes.uuid, { onDelete: "cascade" }),
    inputUuid: uuid("input_uuid")
      .notNull()
      .references(() => unitNodes.uuid, { onDelete: "cascade" }),
    creatorUuid: uuid("creator_uuid")
      .notNull()
      .references(() => users.uuid, { onDelete: "cascade" }),
    createdAt: createdAt(),
  },
  (t) => [
    uniqueIndex("unit_node_edges_pair_unique").on(t.outputUuid, t.inputUuid),
    index("unit_node_edges_input_idx").on(t.inputUuid),
  ],
);

export const unitLogs = pgTable(
  "unit_logs",
  {
    id: bigserial("id", { mode: "number" }).primaryKey(),
    unitUuid: uuid("unit_uuid")
      .notNull()
      .references(() => units.uuid, { onDelete: "cascade" }),
    level: text("level").notNull(),
    text: text("text").notNull(),
    createdAt: createdAt(),
  },
  (t) => [index("unit_logs_unit_time_idx").on(t.unitUuid, t.createdAt)],
);
