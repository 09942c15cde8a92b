CREATE TABLE "federation_followers" (
	"uuid" uuid PRIMARY KEY NOT NULL,
	"node_uuid" uuid NOT NULL,
	"follow_id" text NOT NULL,
	"follower_actor" text NOT NULL,
	"on_behalf_of" text,
	"domain" text NOT NULL,
	"inbox" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "federation_grants" (
	"uuid" uuid PRIMARY KEY NOT NULL,
	"node_uuid" uuid NOT NULL,
	"domain" text NOT NULL,
	"actor" text,
	"creator_uuid" uuid NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "federation_keys" (
	"actor" text NOT NULL,
	"algorithm" text NOT NULL,
	"public_jwk" jsonb NOT NULL,
	"private_jwk_enc" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "federation_kv" (
	"key" text PRIMARY KEY NOT NULL,
	"value" jsonb NOT NULL,
	"expires_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "federation_peers" (
	"domain" text PRIMARY KEY NOT NULL,
	"blocked" boolean DEFAULT false NOT NULL,
	"allowed" boolean DEFAULT false NOT NULL,
	"last_contact_at" timestamp with time zone,
	"delivery_errors" integer DEFAULT 0 NOT NULL,
	"last_error" text,
	"last_error_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "federation_queue" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"message" text NOT NULL,
	"ordering_key" text,
	"run_at" timestamp with time zone DEFAULT now() NOT NULL,
	"locked_until" timestamp with time zone,
	"attempts" integer DEFAULT 0 NOT NULL,
	"last_error" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "federation_remote_edges" (
	"uuid" uuid PRIMARY KEY NOT NULL,
	"input_uuid" uuid NOT NULL,
	"creator_uuid" uuid NOT NULL,
	"remote_actor" text NOT NULL,
	"domain" text NOT NULL,
	"remote_inbox" text NOT NULL,
	"remote_topic" text,
	"status" text DEFAULT 'Pending' NOT NULL,
	"reason" text,
	"follow_id" text NOT NULL,
	"last_sequence" bigint DEFAULT 0 NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "federation_settings" (
	"id" integer PRIMARY KEY DEFAULT 1 NOT NULL,
	"enabled" boolean DEFAULT true NOT NULL,
	"mode" text DEFAULT 'Open' NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "federation_followers" ADD CONSTRAINT "federation_followers_node_uuid_unit_nodes_uuid_fk" FOREIGN KEY ("node_uuid") REFERENCES "public"."unit_nodes"("uuid") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "federation_grants" ADD CONSTRAINT "federation_grants_node_uuid_unit_nodes_uuid_fk" FOREIGN KEY ("node_uuid") REFERENCES "public"."unit_nodes"("uuid") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "federation_grants" ADD CONSTRAINT "federation_grants_creator_uuid_users_uuid_fk" FOREIGN KEY ("creator_uuid") REFERENCES "public"."users"("uuid") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "federation_remote_edges" ADD CONSTRAINT "federation_remote_edges_input_uuid_unit_nodes_uuid_fk" FOREIGN KEY ("input_uuid") REFERENCES "public"."unit_nodes"("uuid") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "federation_remote_edges" ADD CONSTRAINT "federation_remote_edges_creator_uuid_users_uuid_fk" FOREIGN KEY ("creator_uuid") REFERENCES "public"."users"("uuid") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "federation_followers_follow_unique" ON "federation_followers" USING btree ("follow_id");--> statement-breakpoint
CREATE INDEX "federation_followers_node_idx" ON "federation_followers" USING btree ("node_uuid");--> statement-breakpoint
CREATE INDEX "federation_followers_domain_idx" ON "federation_followers" USING btree ("domain");--> statement-breakpoint
CREATE INDEX "federation_grants_node_idx" ON "federation_grants" USING btree ("node_uuid");--> statement-breakpoint
CREATE UNIQUE INDEX "federation_keys_actor_alg_unique" ON "federation_keys" USING btree ("actor","algorithm");--> statement-breakpoint
CREATE INDEX "federation_kv_expires_idx" ON "federation_kv" USING btree ("expires_at");--> statement-breakpoint
CREATE INDEX "federation_queue_run_idx" ON "federation_queue" USING btree ("run_at");--> statement-breakpoint
CREATE INDEX "federation_queue_ordering_idx" ON "federation_queue" USING btree ("ordering_key","id");--> statement-breakpoint
CREATE UNIQUE INDEX "federation_remote_edges_pair_unique" ON "federation_remote_edges" USING btree ("input_uuid","remote_actor");--> statement-breakpoint
CREATE UNIQUE INDEX "federation_remote_edges_follow_unique" ON "federation_remote_edges" USING btree ("follow_id");--> statement-breakpoint
CREATE INDEX "federation_remote_edges_actor_idx" ON "federation_remote_edges" USING btree ("remote_actor");