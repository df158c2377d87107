-- Card payments, auto-recharge that fires, and notifications sent once per event and
-- emailed. PostgreSQL's copy: only the backfill at the end differs from SQLite's.

-- A card payment: a purchase through the provider's checkout (`checkout`) or an
-- auto-recharge (`recharge`). `reference` is the provider's id (checkout session or
-- payment intent); `transfer_id` the ledger transfer that credited it, once paid.
CREATE TABLE payments (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs(id),
    user_id TEXT REFERENCES users(id),
    kind TEXT NOT NULL,
    provider TEXT NOT NULL,
    reference TEXT,
    amount BIGINT NOT NULL,
    status TEXT NOT NULL,
    failure TEXT,
    transfer_id TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX payments_reference ON payments(provider, reference);
CREATE INDEX payments_org ON payments(org_id, kind, created_at);

-- The card an org saved at checkout, which auto-recharge charges off-session.
CREATE TABLE payment_methods (
    org_id TEXT NOT NULL REFERENCES orgs(id),
    provider TEXT NOT NULL,
    customer TEXT NOT NULL,
    payment_method TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (org_id, provider)
);

-- Per org: auto-recharge as set (`orgs.auto_recharge` keeps the JSON the API shows),
-- the recharge in flight (at most one), whether the balance is below its low-balance
-- threshold (a crossing down fires once; rising above re-arms it), and the highest budget
-- alert sent for a month and limit.
CREATE TABLE org_billing (
    org_id TEXT PRIMARY KEY REFERENCES orgs(id),
    recharge_enabled BIGINT NOT NULL DEFAULT 0,
    recharge_threshold BIGINT NOT NULL DEFAULT 0,
    recharge_amount BIGINT NOT NULL DEFAULT 0,
    recharge_monthly_limit BIGINT,
    recharge_payment_id TEXT,
    balance_low BIGINT NOT NULL DEFAULT 1,
    budget_alert_month BIGINT,
    budget_alert_limit BIGINT,
    budget_alert_level BIGINT NOT NULL DEFAULT 0,
    updated_at BIGINT NOT NULL
);

-- A notification about an event carries the event's key: one per person per event. One
-- to be emailed is `pending` until sent (`sent`), refused (`failed`) or no longer wanted
-- (`skipped`); `email_next_at` is when it may next be tried.
ALTER TABLE notifications ADD COLUMN event_key TEXT;
ALTER TABLE notifications ADD COLUMN email_status TEXT;
ALTER TABLE notifications ADD COLUMN email_attempts BIGINT NOT NULL DEFAULT 0;
ALTER TABLE notifications ADD COLUMN email_next_at BIGINT;
CREATE UNIQUE INDEX notifications_event ON notifications(user_id, event_key) WHERE event_key IS NOT NULL;
CREATE INDEX notifications_email ON notifications(email_next_at) WHERE email_status = 'pending';

-- Auto-recharge saved before it could fire: its settings, read from the JSON (amounts
-- are the API's decimal USD strings, six or nine decimals). Backfilled orgs count as
-- below their threshold until the balance is seen above it, so nothing fires at upgrade.
INSERT INTO org_billing (org_id, recharge_enabled, recharge_threshold, recharge_amount, balance_low, updated_at)
SELECT id,
       CASE WHEN saved.settings ->> 'enabled' = 'true' THEN 1 ELSE 0 END,
       CAST(ROUND(CAST(saved.settings ->> 'threshold' AS NUMERIC) * 1000000000) AS BIGINT),
       CAST(ROUND(CAST(saved.settings ->> 'amount' AS NUMERIC) * 1000000000) AS BIGINT),
       1,
       CAST(EXTRACT(EPOCH FROM now()) * 1000 AS BIGINT)
FROM (SELECT id, CAST(auto_recharge AS JSONB) AS settings FROM orgs WHERE auto_recharge IS NOT NULL) saved
WHERE saved.settings ->> 'threshold' IS NOT NULL AND saved.settings ->> 'amount' IS NOT NULL;
