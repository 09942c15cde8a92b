CREATE TABLE "instance_settings" (
	"id" integer PRIMARY KEY DEFAULT 1 NOT NULL,
	"registration_mode" text DEFAULT 'Open' NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "repos" (
	"uuid" uuid PRIMARY KEY NOT NULL,
	"creator_uuid" uuid NOT NULL,
	"name" text NOT NULL,
	"url" text NOT NULL,
	"is_private" boolean DEFAULT false NOT NULL,
	"credentials_enc" text,
	"visibility" text DEFAULT 'Public' NOT NULL,
	"sync_interval_s" integer DEFAULT 86400 NOT NULL,
	"auto_sync" boolean DEFAULT true NOT NULL,
	"default_branch" text,
	"sync_status" text DEFAULT 'Pending' NOT NULL,
	"sync_error" text,
	"last_synced_at" timestamp with time zone,
	"next_sync_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "unit_logs" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"unit_uuid" uuid NOT NULL,
	"level" text NOT NULL,
	"text" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "unit_node_edges" (
	"uuid" uuid PRIMARY KEY NOT NULL,
	"output_uuid" uuid NOT NULL,
	"input_uuid" uuid NOT NULL,
	"creator_uuid" uuid NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "unit_nodes" (
	"uuid" uuid PRIMARY KEY NOT NULL,
	"unit_uuid" uuid NOT NULL,
	"type" text NOT NULL,
	"topic_name" text NOT NULL,
	"visibility" text DEFAULT 'Public' NOT NULL,
	"is_rewritable_input" boolean DEFAULT false NOT NULL,
	"last_value" text,
	"last_value_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "units" (
	"uuid" uuid PRIMARY KEY NOT NULL,
	"creator_uuid" uuid NOT NULL,
	"repo_uuid" uuid NOT NULL,
	"name" text NOT NULL,
	"visibility" text DEFAULT 'Public' NOT NULL,
	"follow_repo" boolean DEFAULT true NOT NULL,
	"branch" text NOT NULL,
	"tag" text,
	"commit" text NOT NULL,
	"token_salt" text NOT NULL,
	"env_enc" text NOT NULL,
	"state_storage_enc" text,
	"last_state" jsonb,
	"last_seen_at" timestamp with time zone,
	"current_commit" text,
	"update_status" text,
	"update_error" text,
	"update_requested_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "users" (
	"uuid" uuid PRIMARY KEY NOT NULL,
	"login" text NOT NULL,
	"email" text NOT NULL,
	"password_hash" text NOT NULL,
	"role" text DEFAULT 'User' NOT NULL,
	"status" text DEFAULT 'Active' NOT NULL,
	"token_version" integer DEFAULT 0 NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "repos" ADD CONSTRAINT "repos_creator_uuid_users_uuid_fk" FOREIGN KEY ("creator_uuid") REFERENCES "public"."users"("uuid") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "unit_logs" ADD CONSTRAINT "unit_logs_unit_uuid_units_uuid_fk" FOREIGN KEY ("unit_uuid") REFERENCES "public"."units"("uuid") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "unit_node_edges" ADD CONSTRAINT "unit_node_edges_output_uuid_unit_nodes_uuid_fk" FOREIGN KEY ("output_uuid") REFERENCES "public"."unit_nodes"("uuid") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "unit_node_edges" ADD CONSTRAINT "unit_node_edges_input_uuid_unit_nodes_uuid_fk" FOREIGN KEY ("input_uuid") REFERENCES "public"."unit_nodes"("uuid") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "unit_node_edges" ADD CONSTRAINT "unit_node_edges_creator_uuid_users_uuid_fk" FOREIGN KEY ("creator_uuid") REFERENCES "public"."users"("uuid") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "unit_nodes" ADD CONSTRAINT "unit_nodes_unit_uuid_units_uuid_fk" FOREIGN KEY ("unit_uuid") REFERENCES "public"."units"("uuid") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "units" ADD CONSTRAINT "units_creator_uuid_users_uuid_fk" FOREIGN KEY ("creator_uuid") REFERENCES "public"."users"("uuid") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "units" ADD CONSTRAINT "units_repo_uuid_repos_uuid_fk" FOREIGN KEY ("repo_uuid") REFERENCES "public"."repos"("uuid") ON DELETE restrict ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "repos_creator_idx" ON "repos" USING btree ("creator_uuid");--> statement-breakpoint
CREATE INDEX "repos_next_sync_idx" ON "repos" USING btree ("next_sync_at");--> statement-breakpoint
CREATE INDEX "unit_logs_unit_time_idx" ON "unit_logs" USING btree ("unit_uuid","created_at");--> statement-breakpoint
CREATE UNIQUE INDEX "unit_node_edges_pair_unique" ON "unit_node_edges" USING btree ("output_uuid","input_uuid");--> statement-breakpoint
CREATE INDEX "unit_node_edges_input_idx" ON "unit_node_edges" USING btree ("input_uuid");--> statement-breakpoint
CREATE UNIQUE INDEX "unit_nodes_unit_type_name_unique" ON "unit_nodes" USING btree ("unit_uuid","type","topic_name");--> statement-breakpoint
CREATE UNIQUE INDEX "units_name_unique" ON "units" USING btree ("name");--> statement-breakpoint
CREATE INDEX "units_repo_idx" ON "units" USING btree ("repo_uuid");--> statement-breakpoint
CREATE INDEX "units_creator_idx" ON "units" USING btree ("creator_uuid");--> statement-breakpoint
CREATE UNIQUE INDEX "users_login_unique" ON "users" USING btree (lower("login"));--> statement-breakpoint
CREATE UNIQUE INDEX "users_email_unique" ON "users" USING btree (lower("email"));