-- The schema and a few rows of a database made by the previous release (bc4d9cc, bot/storage.py before
-- versioned migrations): built with that release's Store, dumped with sqlite3's iterdump.
BEGIN TRANSACTION;
CREATE TABLE "checks" (
   "id" INTEGER PRIMARY KEY,
   "at" TEXT,
   "channel" TEXT,
   "user_id" TEXT,
   "stage" TEXT,
   "city" TEXT,
   "verdict" TEXT
);
CREATE TABLE "deliveries" (
   "id" INTEGER PRIMARY KEY,
   "reminder_id" INTEGER,
   "channel" TEXT,
   "user_id" TEXT,
   "text" TEXT,
   "late" INTEGER,
   "sent_at" TEXT
);
CREATE TABLE "dialog_state" (
   "channel" TEXT,
   "user_id" TEXT,
   "state" TEXT,
   "updated_at" TEXT,
   PRIMARY KEY ("channel", "user_id")
);
INSERT INTO "dialog_state" VALUES('telegram','424242','{"city": "weihai"}','2026-12-01T09:37:53.720235+08:00');
CREATE TABLE "questions" (
   "id" INTEGER PRIMARY KEY,
   "asked_at" TEXT,
   "channel" TEXT,
   "user_id" TEXT,
   "question" TEXT,
   "city" TEXT,
   "abstained" INTEGER,
   "reason" TEXT,
   "citation" TEXT
);
INSERT INTO "questions" VALUES(1,'2026-12-01T09:37:53.742079+08:00','wecom','zhangsan','威海复核多久一次','weihai',0,NULL,'weihai:18');
CREATE TABLE "reminders" (
   "id" INTEGER PRIMARY KEY,
   "subscription_id" INTEGER REFERENCES "subscriptions"("id"),
   "kind" TEXT,
   "due_on" TEXT,
   "lead_days" INTEGER,
   "send_on" TEXT,
   "status" TEXT,
   "attempts" INTEGER,
   "next_try_at" TEXT,
   "last_error" TEXT,
   "created_at" TEXT
);
INSERT INTO "reminders" VALUES(1,1,'review','2026-12-10',30,'2026-11-10','pending',0,NULL,NULL,'2026-12-01T09:37:53.742220+08:00');
CREATE TABLE "seen_messages" (
   "channel" TEXT,
   "key" TEXT,
   "at" TEXT,
   PRIMARY KEY ("channel", "key")
);
INSERT INTO "seen_messages" VALUES('wecom','msg:9100000000000000001','2026-12-01T09:37:53.741961+08:00');
CREATE TABLE "subscriptions" (
   "id" INTEGER PRIMARY KEY,
   "credit_code" TEXT,
   "name" TEXT,
   "city" TEXT,
   "awarded_on" TEXT,
   "channel" TEXT,
   "user_id" TEXT,
   "active" INTEGER,
   "inactive_reason" TEXT,
   "source" TEXT,
   "changed_on" TEXT,
   "change_kind" TEXT,
   "replan_on" TEXT,
   "created_at" TEXT,
   "updated_at" TEXT
);
INSERT INTO "subscriptions" VALUES(1,'91371000000000001X','甲公司','weihai','2024-12-10','wecom','zhangsan',1,NULL,'import',NULL,NULL,NULL,'2026-12-01T09:37:53.719913+08:00','2026-12-01T09:37:53.719913+08:00');
CREATE INDEX "idx_questions_abstained_asked_at"
    ON "questions" ("abstained", "asked_at");
CREATE INDEX "idx_questions_channel_user_id"
    ON "questions" ("channel", "user_id");
CREATE INDEX "idx_checks_channel_user_id"
    ON "checks" ("channel", "user_id");
CREATE INDEX "idx_seen_messages_at"
    ON "seen_messages" ("at");
CREATE UNIQUE INDEX "idx_subscriptions_credit_code"
    ON "subscriptions" ("credit_code");
CREATE INDEX "idx_subscriptions_channel_user_id"
    ON "subscriptions" ("channel", "user_id");
CREATE UNIQUE INDEX "idx_reminders_subscription_id_kind_due_on_lead_days"
    ON "reminders" ("subscription_id", "kind", "due_on", "lead_days");
CREATE INDEX "idx_reminders_status_send_on"
    ON "reminders" ("status", "send_on");
CREATE UNIQUE INDEX "idx_deliveries_reminder_id"
    ON "deliveries" ("reminder_id");
COMMIT;
