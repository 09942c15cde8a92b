CREATE TABLE "update_jobs" (
	"uuid" uuid PRIMARY KEY NOT NULL,
	"repo_uuid" uuid NOT NULL,
	"creator_uuid" uuid,
	"kind" text NOT NULL,
	"max_in_flight" integer NOT NULL,
	"failure_ratio_stop" double precision NOT NULL,
	"total" integer NOT NULL,
	"sent" integer NOT NULL,
	"succeeded" integer NOT NULL,
	"failed" integer NOT NULL,
	"queue" jsonb NOT NULL,
	"in_flight" jsonb NOT NULL,
	"status" text NOT NULL,
	"stopped_reason" text,
	"failures" jsonb NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"finished_at" timestamp with time zone
);
--> statement-breakpoint
ALTER TABLE "update_jobs" ADD CONSTRAINT "update_jobs_repo_uuid_repos_uuid_fk" FOREIGN KEY ("repo_uuid") REFERENCES "public"."repos"("uuid") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "update_jobs_repo_idx" ON "update_jobs" USING btree ("repo_uuid","created_at");