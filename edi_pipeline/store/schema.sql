CREATE TABLE "_sqlite_migrations" (
   "id" INTEGER PRIMARY KEY,
   "migration_set" TEXT,
   "name" TEXT,
   "applied_at" TEXT
);
CREATE UNIQUE INDEX "idx__sqlite_migrations_migration_set_name"
    ON "_sqlite_migrations" ("migration_set", "name");
CREATE TABLE "files" (
   "sha256" TEXT PRIMARY KEY,
   "name" TEXT,
   "kind" TEXT,
   "isa_sender" TEXT,
   "isa_control" TEXT,
   "origin" TEXT,
   "ingested_at" TEXT,
   "claims" INTEGER,
   "payments" INTEGER
);
CREATE INDEX "idx_files_isa_sender_isa_control_kind"
    ON "files" ("isa_sender", "isa_control", "kind");
CREATE TABLE "claims" (
   "id" TEXT PRIMARY KEY,
   "file_sha256" TEXT REFERENCES "files"("sha256"),
   "patient_control_number" TEXT,
   "member_hash" TEXT,
   "payer_id" TEXT,
   "payer_name" TEXT,
   "claim_filing_indicator" TEXT,
   "profile" TEXT,
   "frequency_code" TEXT,
   "payer_claim_control_number" TEXT,
   "total_charge_cents" INTEGER,
   "service_date" TEXT,
   "billing_npi" TEXT,
   "rendering_npi" TEXT,
   "origin" TEXT,
   "submitted_at" TEXT,
   "segment_index" INTEGER,
   "line" INTEGER
);
CREATE INDEX "idx_claims_patient_control_number"
    ON "claims" ("patient_control_number");
CREATE INDEX "idx_claims_member_hash"
    ON "claims" ("member_hash");
CREATE TABLE "claim_lines" (
   "id" TEXT PRIMARY KEY,
   "claim_id" TEXT REFERENCES "claims"("id"),
   "line_number" INTEGER,
   "procedure" TEXT,
   "modifiers" TEXT,
   "charge_cents" INTEGER,
   "units" TEXT,
   "service_date" TEXT,
   "control_number" TEXT,
   "dx_pointers" TEXT,
   "segment_index" INTEGER,
   "line" INTEGER
);
CREATE INDEX "idx_claim_lines_claim_id"
    ON "claim_lines" ("claim_id");
CREATE TABLE "remits" (
   "id" TEXT PRIMARY KEY,
   "file_sha256" TEXT REFERENCES "files"("sha256"),
   "payer_id" TEXT,
   "payer_name" TEXT,
   "payee_npi" TEXT,
   "trace_number" TEXT,
   "payment_date" TEXT,
   "payment_cents" INTEGER,
   "payment_method" TEXT,
   "credit_debit" TEXT,
   "segment_index" INTEGER,
   "line" INTEGER
);
CREATE TABLE "claim_payments" (
   "id" TEXT PRIMARY KEY,
   "remit_id" TEXT REFERENCES "remits"("id"),
   "file_sha256" TEXT,
   "patient_control_number" TEXT,
   "status_code" TEXT,
   "charge_cents" INTEGER,
   "paid_cents" INTEGER,
   "patient_responsibility_cents" INTEGER,
   "claim_filing_indicator" TEXT,
   "payer_claim_control_number" TEXT,
   "frequency_code" TEXT,
   "service_date" TEXT,
   "remarks" TEXT,
   "seq" INTEGER,
   "segment_index" INTEGER,
   "line" INTEGER
);
CREATE INDEX "idx_claim_payments_patient_control_number"
    ON "claim_payments" ("patient_control_number");
CREATE TABLE "service_payments" (
   "id" TEXT PRIMARY KEY,
   "claim_payment_id" TEXT REFERENCES "claim_payments"("id"),
   "seq" INTEGER,
   "procedure" TEXT,
   "modifiers" TEXT,
   "original_procedure" TEXT,
   "charge_cents" INTEGER,
   "paid_cents" INTEGER,
   "allowed_cents" INTEGER,
   "units" TEXT,
   "service_date" TEXT,
   "control_number" TEXT,
   "remarks" TEXT,
   "segment_index" INTEGER,
   "line" INTEGER
);
CREATE INDEX "idx_service_payments_claim_payment_id"
    ON "service_payments" ("claim_payment_id");
CREATE TABLE "adjustments" (
   "id" TEXT PRIMARY KEY,
   "claim_payment_id" TEXT,
   "service_payment_id" TEXT,
   "group_code" TEXT,
   "reason" TEXT,
   "amount_cents" INTEGER,
   "quantity" TEXT
);
CREATE INDEX "idx_adjustments_claim_payment_id"
    ON "adjustments" ("claim_payment_id");
CREATE TABLE "provider_adjustments" (
   "id" TEXT PRIMARY KEY,
   "remit_id" TEXT REFERENCES "remits"("id"),
   "provider_id" TEXT,
   "fiscal_period_end" TEXT,
   "reason" TEXT,
   "reference" TEXT,
   "amount_cents" INTEGER
);
CREATE TABLE "authorizations" (
   "id" TEXT PRIMARY KEY,
   "member_id" TEXT,
   "payer_id" TEXT,
   "auth_number" TEXT,
   "codes" TEXT,
   "units" INTEGER,
   "start_date" TEXT,
   "end_date" TEXT,
   "loaded_at" TEXT
);
CREATE INDEX "idx_authorizations_member_id_payer_id"
    ON "authorizations" ("member_id", "payer_id");
CREATE TABLE "auth_uses" (
   "id" TEXT PRIMARY KEY,
   "auth_id" TEXT REFERENCES "authorizations"("id"),
   "patient_control_number" TEXT,
   "procedure" TEXT,
   "line_number" INTEGER,
   "units" INTEGER,
   "used_at" TEXT
);
CREATE TABLE "findings" (
   "id" TEXT PRIMARY KEY,
   "file_sha256" TEXT,
   "patient_control_number" TEXT,
   "rule" TEXT,
   "severity" TEXT,
   "line" INTEGER,
   "procedure" TEXT,
   "action" TEXT,
   "message" TEXT
);
CREATE TABLE "batch_files" (
   "sha256" TEXT PRIMARY KEY,
   "name" TEXT,
   "kind" TEXT,
   "status" TEXT,
   "detail" TEXT,
   "finished_at" TEXT
, "publish_to" TEXT);
CREATE INDEX idx_claims_replaced_icn on claims (payer_claim_control_number) where frequency_code in ('7', '8');
CREATE INDEX idx_claim_payments_payer_claim_control_number on claim_payments (payer_claim_control_number);
CREATE INDEX idx_findings_file_sha256 on findings (file_sha256);
CREATE INDEX idx_batch_files_name on batch_files (name);
CREATE TABLE "interchanges" (
   "file_sha256" TEXT REFERENCES "files"("sha256"),
   "isa_sender" TEXT,
   "isa_control" TEXT,
   "kind" TEXT,
   PRIMARY KEY ("file_sha256", "isa_sender", "isa_control")
);
CREATE INDEX "idx_interchanges_isa_sender_isa_control"
    ON "interchanges" ("isa_sender", "isa_control");
CREATE TABLE "batch_claims" (
   "sha256" TEXT PRIMARY KEY,
   "run" TEXT,
   "claimed_at" TEXT
);
CREATE INDEX "idx_batch_claims_run"
    ON "batch_claims" ("run");
CREATE TABLE "claim_events" (
   "id" TEXT PRIMARY KEY,
   "patient_control_number" TEXT,
   "state" TEXT,
   "event_date" TEXT,
   "source_file" TEXT,
   "segment_index" INTEGER,
   "line" INTEGER,
   "detail" TEXT,
   "recorded_at" TEXT
);
CREATE INDEX "idx_claim_events_patient_control_number"
    ON "claim_events" ("patient_control_number");
CREATE TABLE "outbound_sets" (
   "id" TEXT PRIMARY KEY,
   "file_sha256" TEXT,
   "outbound_file" TEXT,
   "isa_sender" TEXT,
   "isa_receiver" TEXT,
   "isa_control" TEXT,
   "gs_control" TEXT,
   "st_control" TEXT,
   "claims" INTEGER,
   "recorded_at" TEXT
, "sent_order" INTEGER);
CREATE INDEX "idx_outbound_sets_gs_control_st_control"
    ON "outbound_sets" ("gs_control", "st_control");
CREATE TABLE "outbound_claims" (
   "set_id" TEXT REFERENCES "outbound_sets"("id"),
   "patient_control_number" TEXT,
   "clearinghouse_trace" TEXT,
   PRIMARY KEY ("set_id", "patient_control_number")
);
CREATE INDEX idx_outbound_claims_trace on outbound_claims (clearinghouse_trace) where clearinghouse_trace is not null;
