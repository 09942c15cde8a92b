import { sql } from "drizzle-orm";
import {
  bigint,
  bigserial,
  boolean,
  doublePrecision,
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
export type AccessTokenScope = "read" | "write";
export type RegistrationMode = "Open" | "EmailVerification" | "ManualApproval" | "Closed";
export type SyncStatus = "Pending" | "Syncing" | "Synced" | "Error";
export type UnitNodeType = "Input" | "Output";
export type UpdateStatus = "RequestSent" | "Success" | "Error";

/** A single row (id = 1) of settings the admin changes at run time. */
export const instanceSettings = pgTable("instance_settings", {
  id: integer("id").primaryKey().default(1),
  registrationMode: text("registration_mode").$type<RegistrationMode>().notNull().default("Open"),
  /** A known text encrypted with PEPEUNIT_ENCRYPT_KEY: proves at start-up that the key fits. */
  keyCheck: text("key_check"),
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
    // Notification switches (src/alerts/): a failed update or an offline unit of theirs
    // becomes an alert event; `notifyEmail` also mails every alert event.
    notifyUpdateFailed: boolean("notify_update_failed").notNull().default(true),
    notifyUnitOffline: boolean("notify_unit_offline").notNull().default(true),
    notifyEmail: boolean("notify_email").notNull().default(false),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    uniqueIndex("users_login_unique").on(sql`lower(${t.login})`),
    uniqueIndex("users_email_unique").on(sql`lower(${t.email})`),
  ],
);

/**
 * Failed logins per key ("login:<lowercased login>" or "addr:<client address>"): the
 * delay before the next attempt grows with `failures`. In the database so a restart
 * does not reset it and every process sharing the database sees the same counters.
 */
export const loginAttempts = pgTable(
  "login_attempts",
  {
    key: text("key").primaryKey(),
    failures: integer("failures").notNull(),
    lastFailureAt: timestamp("last_failure_at", { withTimezone: true }).notNull(),
    blockedUntil: timestamp("blocked_until", { withTimezone: true }),
  },
  (t) => [index("login_attempts_last_failure_idx").on(t.lastFailureAt)],
);

/** User tokens revoked before their expiry (logout), by `jti`; kept until `expires_at`. */
export const revokedTokens = pgTable(
  "revoked_tokens",
  {
    jti: text("jti").primaryKey(),
    expiresAt: timestamp("expires_at", { withTimezone: true }).notNull(),
  },
  (t) => [index("revoked_tokens_expires_idx").on(t.expiresAt)],
);

/**
 * Personal access tokens for integrations (Grafana, scripts): long-lived, revocable one
 * by one. Only the SHA-256 of the secret is kept. `tokenVersion` is the user's at
 * creation: a password change or block bumps the user's and so revokes every one.
 */
export const accessTokens = pgTable(
  "access_tokens",
  {
    uuid: uuid("uuid").primaryKey(),
    userUuid: uuid("user_uuid")
      .notNull()
      .references(() => users.uuid, { onDelete: "cascade" }),
    name: text("name").notNull(),
    scope: text("scope").$type<AccessTokenScope>().notNull(),
    secretHash: text("secret_hash").notNull(),
    tokenVersion: integer("token_version").notNull(),
    expiresAt: timestamp("expires_at", { withTimezone: true }),
    lastUsedAt: timestamp("last_used_at", { withTimezone: true }),
    createdAt: createdAt(),
  },
  (t) => [
    uniqueIndex("access_tokens_secret_hash_unique").on(t.secretHash),
    index("access_tokens_user_idx").on(t.userUuid),
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

/**
 * Mass update jobs (src/ota/update-jobs.ts), saved as they progress so a restart
 * resumes the waves where they were: the units not sent yet and those awaited.
 */
export const updateJobs = pgTable(
  "update_jobs",
  {
    uuid: uuid("uuid").primaryKey(),
    repoUuid: uuid("repo_uuid")
      .notNull()
      .references(() => repos.uuid, { onDelete: "cascade" }),
    creatorUuid: uuid("creator_uuid"),
    kind: text("kind").$type<"Manual" | "Automatic">().notNull(),
    maxInFlight: integer("max_in_flight").notNull(),
    failureRatioStop: doublePrecision("failure_ratio_stop").notNull(),
    total: integer("total").notNull(),
    sent: integer("sent").notNull(),
    succeeded: integer("succeeded").notNull(),
    failed: integer("failed").notNull(),
    queue: jsonb("queue").$type<string[]>().notNull(),
    inFlight: jsonb("in_flight").$type<string[]>().notNull(),
    status: text("status").$type<"Running" | "Stopped" | "Finished">().notNull(),
    stoppedReason: text("stopped_reason"),
    failures: jsonb("failures").$type<Array<{ unitUuid: string; error: string }>>().notNull(),
    createdAt: createdAt(),
    finishedAt: timestamp("finished_at", { withTimezone: true }),
  },
  (t) => [index("update_jobs_repo_idx").on(t.repoUuid, t.createdAt)],
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
    /** The value history's data pipe config (src/history/), as the user wrote it (YAML). */
    dataPipeYaml: text("data_pipe_yaml"),
    /** Values are run through the data pipe and recorded only while this is on. */
    isDataPipeActive: boolean("is_data_pipe_active").notNull().default(false),
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

// ───────────────────────────── Federation (src/federation/) ─────────────────────────────
// Everything below belongs to the federation bridge: its settings and peers, actor keys,
// who follows our outputs, our edges from remote outputs, grants, and Fedify's
// key–value store and message queue (so deliveries survive restarts).

export type FederationMode = "Open" | "AllowList";
export type RemoteEdgeStatus = "Pending" | "Active" | "Rejected";

/** A single row (id = 1): federation on/off and open or allow-list mode. */
export const federationSettings = pgTable("federation_settings", {
  id: integer("id").primaryKey().default(1),
  enabled: boolean("enabled").notNull().default(true),
  mode: text("mode").$type<FederationMode>().notNull().default("Open"),
  updatedAt: updatedAt(),
});

/** Remote instances by domain (host[:port], lowercase): admin lists and contact statistics. */
export const federationPeers = pgTable("federation_peers", {
  domain: text("domain").primaryKey(),
  blocked: boolean("blocked").notNull().default(false),
  allowed: boolean("allowed").notNull().default(false),
  lastContactAt: timestamp("last_contact_at", { withTimezone: true }),
  deliveryErrors: integer("delivery_errors").notNull().default(0),
  lastError: text("last_error"),
  lastErrorAt: timestamp("last_error_at", { withTimezone: true }),
  createdAt: createdAt(),
});

/** How src/federation/keys.ts names a key pair: the "/2048" one is the instance's readings key. */
export type FederationKeyAlgorithm = "RSASSA-PKCS1-v1_5" | "Ed25519" | "RSASSA-PKCS1-v1_5/2048";

/** Key pairs of local actors (instance, units, variables); the private half AES-GCM encrypted. */
export const federationKeys = pgTable(
  "federation_keys",
  {
    actor: text("actor").notNull(),
    algorithm: text("algorithm").$type<FederationKeyAlgorithm>().notNull(),
    publicJwk: jsonb("public_jwk").notNull(),
    privateJwkEnc: text("private_jwk_enc").notNull(),
    createdAt: createdAt(),
  },
  (t) => [uniqueIndex("federation_keys_actor_alg_unique").on(t.actor, t.algorithm)],
);

/** Remote instances following one of our output variables (one row per accepted Follow). */
export const federationFollowers = pgTable(
  "federation_followers",
  {
    uuid: uuid("uuid").primaryKey(),
    nodeUuid: uuid("node_uuid")
      .notNull()
      .references(() => unitNodes.uuid, { onDelete: "cascade" }),
    followId: text("follow_id").notNull(),
    followerActor: text("follower_actor").notNull(),
    /** The remote unit the Follow was made for (its actor URL), when given. */
    onBehalfOf: text("on_behalf_of"),
    domain: text("domain").notNull(),
    inbox: text("inbox").notNull(),
    createdAt: createdAt(),
  },
  (t) => [
    uniqueIndex("federation_followers_follow_unique").on(t.followId),
    index("federation_followers_node_idx").on(t.nodeUuid),
    index("federation_followers_domain_idx").on(t.domain),
  ],
);

/** Our edges from a remote output into a local input: Pending until the remote instance answers. */
export const federationRemoteEdges = pgTable(
  "federation_remote_edges",
  {
    uuid: uuid("uuid").primaryKey(),
    inputUuid: uuid("input_uuid")
      .notNull()
      .references(() => unitNodes.uuid, { onDelete: "cascade" }),
    creatorUuid: uuid("creator_uuid")
      .notNull()
      .references(() => users.uuid, { onDelete: "cascade" }),
    remoteActor: text("remote_actor").notNull(),
    domain: text("domain").notNull(),
    remoteInbox: text("remote_inbox").notNull(),
    /** The output's home topic `REMOTE_D/N[/pepeunit]`, known once accepted. */
    remoteTopic: text("remote_topic"),
    status: text("status").$type<RemoteEdgeStatus>().notNull().default("Pending"),
    reason: text("reason"),
    followId: text("follow_id").notNull(),
    /** Highest sequence number relayed; older or equal readings are dropped. */
    lastSequence: bigint("last_sequence", { mode: "number" }).notNull().default(0),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    uniqueIndex("federation_remote_edges_pair_unique").on(t.inputUuid, t.remoteActor),
    uniqueIndex("federation_remote_edges_follow_unique").on(t.followId),
    index("federation_remote_edges_actor_idx").on(t.remoteActor),
  ],
);

/** A Private output opened to a remote instance (domain) or to one remote unit (actor URL). */
export const federationGrants = pgTable(
  "federation_grants",
  {
    uuid: uuid("uuid").primaryKey(),
    nodeUuid: uuid("node_uuid")
      .notNull()
      .references(() => unitNodes.uuid, { onDelete: "cascade" }),
    domain: text("domain").notNull(),
    actor: text("actor"),
    creatorUuid: uuid("creator_uuid")
      .notNull()
      .references(() => users.uuid, { onDelete: "cascade" }),
    createdAt: createdAt(),
  },
  (t) => [index("federation_grants_node_idx").on(t.nodeUuid)],
);

/** Fedify's KvStore: key = JSON of the key array. */
export const federationKv = pgTable(
  "federation_kv",
  {
    key: text("key").primaryKey(),
    value: jsonb("value").notNull(),
    expiresAt: timestamp("expires_at", { withTimezone: true }),
  },
  (t) => [index("federation_kv_expires_idx").on(t.expiresAt)],
);

/** Fedify's MessageQueue: claimed with FOR UPDATE SKIP LOCKED; one message at a time per ordering key. */
export const federationQueue = pgTable(
  "federation_queue",
  {
    id: bigserial("id", { mode: "number" }).primaryKey(),
    // AES-GCM text form of the JSON message: outbox messages carry signing keys.
    message: text("message").notNull(),
    orderingKey: text("ordering_key"),
    runAt: timestamp("run_at", { withTimezone: true }).notNull().defaultNow(),
    lockedUntil: timestamp("locked_until", { withTimezone: true }),
    attempts: integer("attempts").notNull().default(0),
    lastError: text("last_error"),
    createdAt: createdAt(),
  },
  (t) => [
    index("federation_queue_run_idx").on(t.runAt),
    index("federation_queue_ordering_idx").on(t.orderingKey, t.id),
  ],
);

/**
 * Recent activities per local actor (instance, unit, output variable), served as its
 * ActivityPub outbox newest first. Only the newest few per actor are kept (trimmed by
 * the (actor, id) index, never by a scan); reading batches appear as summaries.
 */
export const federationOutbox = pgTable(
  "federation_outbox",
  {
    id: bigserial("id", { mode: "number" }).primaryKey(),
    /** The actor's identifier: "instance", a unit uuid or an output variable uuid. */
    actor: text("actor").notNull(),
    activityId: text("activity_id").notNull(),
    type: text("type").notNull(),
    /** The activity as compact JSON-LD. */
    activity: jsonb("activity").notNull(),
    createdAt: createdAt(),
  },
  (t) => [index("federation_outbox_actor_idx").on(t.actor, t.id)],
);

// ───────────────────────────── Value history (src/history/) ─────────────────────────────
// What a variable's data pipe keeps: single records (LastValue, NRecords, TimeWindow), one
// record per closed window (Aggregation), and the accepted values of still-open windows
// (so a window survives restarts and memory stays bounded whatever the window and rate).

export type HistoryStateType = "Number" | "Text";
export type AggregationFunction = "Avg" | "Min" | "Max" | "Sum" | "Median";

export const historyRecords = pgTable(
  "history_records",
  {
    id: bigserial("id", { mode: "number" }).primaryKey(),
    nodeUuid: uuid("node_uuid")
      .notNull()
      .references(() => unitNodes.uuid, { onDelete: "cascade" }),
    state: text("state").notNull(),
    stateType: text("state_type").$type<HistoryStateType>().notNull(),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull(),
    /**
     * The record as the API answers it (JSON text), stored when written
     * (src/history/history.store.ts recordText); null in rows older than it: built when read.
     */
    answerText: text("answer_text"),
  },
  // Trimming (newest n, or newer than the window) and range queries walk this index.
  (t) => [index("history_records_node_time_idx").on(t.nodeUuid, t.createdAt, t.id)],
);

export const historyAggregates = pgTable(
  "history_aggregates",
  {
    id: bigserial("id", { mode: "number" }).primaryKey(),
    nodeUuid: uuid("node_uuid")
      .notNull()
      .references(() => unitNodes.uuid, { onDelete: "cascade" }),
    aggregationType: text("aggregation_type").$type<AggregationFunction>().notNull(),
    timeWindowSize: integer("time_window_size").notNull(),
    state: doublePrecision("state").notNull(),
    startWindow: timestamp("start_window", { withTimezone: true }).notNull(),
    endWindow: timestamp("end_window", { withTimezone: true }).notNull(),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull(),
  },
  (t) => [
    // A window is closed once: a second close (or an imported row) for it is ignored.
    uniqueIndex("history_aggregates_window_unique").on(
      t.nodeUuid,
      t.aggregationType,
      t.timeWindowSize,
      t.startWindow,
    ),
    index("history_aggregates_node_time_idx").on(t.nodeUuid, t.createdAt, t.id),
  ],
);

/** Accepted values of Aggregation windows not closed yet; moved into history_aggregates at the end. */
export const historyWindowValues = pgTable(
  "history_window_values",
  {
    id: bigserial("id", { mode: "number" }).primaryKey(),
    nodeUuid: uuid("node_uuid")
      .notNull()
      .references(() => unitNodes.uuid, { onDelete: "cascade" }),
    // The window's own size and function: a config changed mid-window still closes it as begun.
    aggregationType: text("aggregation_type").$type<AggregationFunction>().notNull(),
    windowSize: integer("window_size").notNull(),
    windowStart: timestamp("window_start", { withTimezone: true }).notNull(),
    windowEnd: timestamp("window_end", { withTimezone: true }).notNull(),
    value: doublePrecision("value").notNull(),
  },
  (t) => [
    index("history_window_values_end_idx").on(t.windowEnd),
    index("history_window_values_node_idx").on(t.nodeUuid),
  ],
);

// ───────────────────────────── Alerts (src/alerts/) ─────────────────────────────
// A user's threshold rules on numeric variables and every alert event sent to them.

export type AlertCondition = "normal" | "firing";
export type AlertEventKind = "threshold" | "back_to_normal" | "update_failed" | "unit_offline";

export const alertRules = pgTable(
  "alert_rules",
  {
    uuid: uuid("uuid").primaryKey(),
    userUuid: uuid("user_uuid")
      .notNull()
      .references(() => users.uuid, { onDelete: "cascade" }),
    nodeUuid: uuid("node_uuid")
      .notNull()
      .references(() => unitNodes.uuid, { onDelete: "cascade" }),
    min: doublePrecision("min"),
    max: doublePrecision("max"),
    hysteresis: doublePrecision("hysteresis").notNull().default(0),
    minIntervalS: integer("min_interval_s").notNull().default(60),
    enabled: boolean("enabled").notNull().default(true),
    // The evaluator's state, kept so a restart neither repeats nor loses a message:
    // what the values say now, what the user was last told, and when.
    condition: text("condition").$type<AlertCondition>().notNull().default("normal"),
    sentCondition: text("sent_condition").$type<AlertCondition>().notNull().default("normal"),
    lastSentAt: timestamp("last_sent_at", { withTimezone: true }),
    /** The value that made the last condition change, and the limit it crossed (if any). */
    lastValue: doublePrecision("last_value"),
    crossedLimit: text("crossed_limit").$type<"min" | "max">(),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    index("alert_rules_user_idx").on(t.userUuid, t.createdAt),
    index("alert_rules_node_idx").on(t.nodeUuid),
  ],
);

export const alertEvents = pgTable(
  "alert_events",
  {
    uuid: uuid("uuid").primaryKey(),
    userUuid: uuid("user_uuid")
      .notNull()
      .references(() => users.uuid, { onDelete: "cascade" }),
    kind: text("kind").$type<AlertEventKind>().notNull(),
    // No foreign keys: an event outlives the rule, variable or unit it speaks of.
    ruleUuid: uuid("rule_uuid"),
    unitUuid: uuid("unit_uuid"),
    nodeUuid: uuid("node_uuid"),
    message: text("message").notNull(),
    isRead: boolean("is_read").notNull().default(false),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull(),
  },
  (t) => [index("alert_events_user_time_idx").on(t.userUuid, t.createdAt, t.uuid)],
);

/** A user's Telegram chat (src/telegram/): one chat per user, one user per chat. */
export const telegramLinks = pgTable(
  "telegram_links",
  {
    userUuid: uuid("user_uuid")
      .primaryKey()
      .references(() => users.uuid, { onDelete: "cascade" }),
    chatId: bigint("chat_id", { mode: "number" }).notNull(),
    createdAt: createdAt(),
  },
  (t) => [uniqueIndex("telegram_links_chat_unique").on(t.chatId)],
);

/** One-time codes of `/start <code>`; only their SHA-256 is kept, used codes are deleted. */
export const telegramLinkCodes = pgTable(
  "telegram_link_codes",
  {
    codeHash: text("code_hash").primaryKey(),
    userUuid: uuid("user_uuid")
      .notNull()
      .references(() => users.uuid, { onDelete: "cascade" }),
    expiresAt: timestamp("expires_at", { withTimezone: true }).notNull(),
  },
  (t) => [index("telegram_link_codes_user_idx").on(t.userUuid)],
);

export type DownloadKind = "env" | "firmware";

/**
 * Single-use download links the bot hands out (env.json, firmware): the file itself
 * never passes through Telegram. Only the SHA-256 of the token is kept.
 */
export const downloadTokens = pgTable(
  "download_tokens",
  {
    tokenHash: text("token_hash").primaryKey(),
    userUuid: uuid("user_uuid")
      .notNull()
      .references(() => users.uuid, { onDelete: "cascade" }),
    unitUuid: uuid("unit_uuid")
      .notNull()
      .references(() => units.uuid, { onDelete: "cascade" }),
    kind: text("kind").$type<DownloadKind>().notNull(),
    expiresAt: timestamp("expires_at", { withTimezone: true }).notNull(),
  },
  (t) => [index("download_tokens_expires_idx").on(t.expiresAt)],
);

/** A board item: a variable, as the user labelled it; `values` are an Input's buttons. */
export type BoardItem = { unitNodeUuid: string; label: string | null; values: string[] };

/**
 * A user's board (src/boards/): read-outs of outputs and buttons for inputs. Items keep
 * the variable's uuid without a foreign key: one deleted or hidden is shown as unavailable.
 */
export const boards = pgTable(
  "boards",
  {
    uuid: uuid("uuid").primaryKey(),
    creatorUuid: uuid("creator_uuid")
      .notNull()
      .references(() => users.uuid, { onDelete: "cascade" }),
    name: text("name").notNull(),
    items: jsonb("items").$type<BoardItem[]>().notNull(),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [index("boards_creator_idx").on(t.creatorUuid, t.createdAt)],
);
