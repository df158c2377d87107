-- The metered gateway: credit leases, the platform's fee on each usage record, and the
-- indexes the gateway's counters are seeded from.

-- A hold is either one reservation (`hold`: posted, voided or expired once) or a replica's
-- credit lease (`lease`: drawn down by many settled calls while pending, then released).
ALTER TABLE ledger_holds ADD COLUMN kind TEXT NOT NULL DEFAULT 'hold';
CREATE INDEX ledger_holds_account ON ledger_holds(account_id, state);

-- The platform's share of `cost` (the publisher earned `cost - fee`).
ALTER TABLE usage_records ADD COLUMN fee BIGINT NOT NULL DEFAULT 0;

CREATE INDEX usage_records_free ON usage_records(org_id, agent_id, function_name, created_at) WHERE free_tier = 1;
CREATE INDEX usage_records_agent_time ON usage_records(agent_id, created_at);
