CREATE TABLE "history_aggregates" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"node_uuid" uuid NOT NULL,
	"aggregation_type" text NOT NULL,
	"time_window_size" integer NOT NULL,
	"state" double precision NOT NULL,
	"start_window" timestamp with time zone NOT NULL,
	"end_window" timestamp with time zone NOT NULL,
	"created_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE TABLE "history_records" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"node_uuid" uuid NOT NULL,
	"state" text NOT NULL,
	"state_type" text NOT NULL,
	"created_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE TABLE "history_window_values" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"node_uuid" uuid NOT NULL,
	"aggregation_type" text NOT NULL,
	"window_size" integer NOT NULL,
	"window_start" timestamp with time zone NOT NULL,
	"window_end" timestamp with time zone NOT NULL,
	"value" double precision NOT NULL
);
--> statement-breakpoint
ALTER TABLE "unit_nodes" ADD COLUMN "data_pipe_yaml" text;--> statement-breakpoint
ALTER TABLE "unit_nodes" ADD COLUMN "is_data_pipe_active" boolean DEFAULT false NOT NULL;--> statement-breakpoint
ALTER TABLE "history_aggregates" ADD CONSTRAINT "history_aggregates_node_uuid_unit_nodes_uuid_fk" FOREIGN KEY ("node_uuid") REFERENCES "public"."unit_nodes"("uuid") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "history_records" ADD CONSTRAINT "history_records_node_uuid_unit_nodes_uuid_fk" FOREIGN KEY ("node_uuid") REFERENCES "public"."unit_nodes"("uuid") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "history_window_values" ADD CONSTRAINT "history_window_values_node_uuid_unit_nodes_uuid_fk" FOREIGN KEY ("node_uuid") REFERENCES "public"."unit_nodes"("uuid") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "history_aggregates_window_unique" ON "history_aggregates" USING btree ("node_uuid","aggregation_type","time_window_size","start_window");--> statement-breakpoint
CREATE INDEX "history_aggregates_node_time_idx" ON "history_aggregates" USING btree ("node_uuid","created_at","id");--> statement-breakpoint
CREATE INDEX "history_records_node_time_idx" ON "history_records" USING btree ("node_uuid","created_at","id");--> statement-breakpoint
CREATE INDEX "history_window_values_end_idx" ON "history_window_values" USING btree ("window_end");--> statement-breakpoint
CREATE INDEX "history_window_values_node_idx" ON "history_window_values" USING btree ("node_uuid");