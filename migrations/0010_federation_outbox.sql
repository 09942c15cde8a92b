CREATE TABLE "federation_outbox" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"actor" text NOT NULL,
	"activity_id" text NOT NULL,
	"type" text NOT NULL,
	"activity" jsonb NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE INDEX "federation_outbox_actor_idx" ON "federation_outbox" USING btree ("actor","id");