-- Tollgate foundation schema. Shared by SQLite and PostgreSQL: only portable types
-- (TEXT, BIGINT; flags are BIGINT 0/1; times are Unix milliseconds; money is nano-USD).

CREATE TABLE users (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    is_operator BIGINT NOT NULL DEFAULT 0,
    personal_org_id TEXT NOT NULL,
    theme TEXT NOT NULL DEFAULT 'light',
    email_notifications BIGINT NOT NULL DEFAULT 1,
    created_at BIGINT NOT NULL
);

CREATE TABLE orgs (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    personal BIGINT NOT NULL DEFAULT 0,
    monthly_budget BIGINT,
    auto_recharge TEXT,
    rate_limit_minute BIGINT,
    rate_limit_hour BIGINT,
    rate_limit_day BIGINT,
    created_at BIGINT NOT NULL
);

CREATE TABLE memberships (
    org_id TEXT NOT NULL REFERENCES orgs(id),
    user_id TEXT NOT NULL REFERENCES users(id),
    role TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (org_id, user_id)
);
CREATE INDEX memberships_user ON memberships(user_id);

CREATE TABLE invitations (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs(id),
    email TEXT NOT NULL,
    role TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    invited_by TEXT NOT NULL REFERENCES users(id),
    status TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX invitations_email ON invitations(email);

CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id),
    csrf_token TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX sessions_user ON sessions(user_id);

CREATE TABLE account_tokens (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id),
    name TEXT NOT NULL,
    prefix TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    scopes TEXT NOT NULL,
    expires_at BIGINT,
    revoked_at BIGINT,
    last_used_at BIGINT,
    created_at BIGINT NOT NULL
);
CREATE INDEX account_tokens_user ON account_tokens(user_id);

CREATE TABLE agents (
    id TEXT PRIMARY KEY,
    slug TEXT NOT NULL UNIQUE,
    publisher_org_id TEXT NOT NULL REFERENCES orgs(id),
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    category TEXT NOT NULL,
    protocol TEXT NOT NULL,
    platforms TEXT NOT NULL,
    capabilities TEXT NOT NULL,
    tags TEXT NOT NULL,
    use_cases TEXT NOT NULL,
    support TEXT NOT NULL,
    governance TEXT NOT NULL,
    trust_score BIGINT NOT NULL,
    search_text TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX agents_publisher ON agents(publisher_org_id);

CREATE TABLE versions (
    id TEXT PRIMARY KEY,
    agent_id TEXT NOT NULL REFERENCES agents(id),
    version TEXT NOT NULL,
    upstream_url TEXT NOT NULL,
    upstream_headers_sealed TEXT,
    base_fee BIGINT NOT NULL,
    functions TEXT NOT NULL,
    default_pricing TEXT,
    dependencies TEXT NOT NULL,
    task_timeout_seconds BIGINT NOT NULL,
    cold_start BIGINT NOT NULL,
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (agent_id, version)
);

CREATE TABLE reviews (
    id TEXT PRIMARY KEY,
    agent_id TEXT NOT NULL REFERENCES agents(id),
    user_id TEXT NOT NULL REFERENCES users(id),
    rating BIGINT NOT NULL,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (agent_id, user_id)
);

CREATE TABLE installations (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs(id),
    agent_id TEXT NOT NULL REFERENCES agents(id),
    version TEXT NOT NULL,
    install_token TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL,
    installed_by TEXT NOT NULL REFERENCES users(id),
    task_timeout_seconds BIGINT,
    created_at BIGINT NOT NULL,
    uninstalled_at BIGINT
);
CREATE UNIQUE INDEX installations_one_active ON installations(org_id, agent_id) WHERE status = 'active';
CREATE INDEX installations_agent ON installations(agent_id);

CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    installation_id TEXT NOT NULL REFERENCES installations(id),
    org_id TEXT NOT NULL REFERENCES orgs(id),
    agent_id TEXT NOT NULL REFERENCES agents(id),
    user_id TEXT NOT NULL REFERENCES users(id),
    name TEXT NOT NULL,
    prefix TEXT NOT NULL,
    key_hash TEXT NOT NULL UNIQUE,
    limit_requests BIGINT NOT NULL DEFAULT 0,
    limit_input_tokens BIGINT NOT NULL DEFAULT 0,
    limit_output_tokens BIGINT NOT NULL DEFAULT 0,
    limit_cache_tokens BIGINT NOT NULL DEFAULT 0,
    managed BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT,
    last_used_at BIGINT
);
CREATE INDEX api_keys_installation ON api_keys(installation_id);

-- The ledger: accounts, transfers (double entry) and holds (pending transfers).
CREATE TABLE ledger_accounts (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    owner_id TEXT NOT NULL,
    balance BIGINT NOT NULL DEFAULT 0,
    pending BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    UNIQUE (kind, owner_id)
);

CREATE TABLE ledger_transfers (
    id TEXT PRIMARY KEY,
    idempotency_key TEXT NOT NULL UNIQUE,
    debit_account_id TEXT NOT NULL REFERENCES ledger_accounts(id),
    credit_account_id TEXT NOT NULL REFERENCES ledger_accounts(id),
    amount BIGINT NOT NULL,
    kind TEXT NOT NULL,
    memo TEXT NOT NULL,
    hold_id TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX ledger_transfers_debit ON ledger_transfers(debit_account_id, created_at);
CREATE INDEX ledger_transfers_credit ON ledger_transfers(credit_account_id, created_at);

CREATE TABLE ledger_holds (
    id TEXT PRIMARY KEY,
    idempotency_key TEXT NOT NULL UNIQUE,
    account_id TEXT NOT NULL REFERENCES ledger_accounts(id),
    amount BIGINT NOT NULL,
    state TEXT NOT NULL,
    posted_amount BIGINT NOT NULL DEFAULT 0,
    expires_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    resolved_at BIGINT
);
CREATE INDEX ledger_holds_pending ON ledger_holds(state, expires_at);

-- One row per gateway call: metadata only, never content.
CREATE TABLE usage_records (
    id TEXT PRIMARY KEY,
    request_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    org_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    key_id TEXT NOT NULL,
    installation_id TEXT NOT NULL,
    agent_id TEXT NOT NULL,
    version TEXT NOT NULL,
    function_name TEXT NOT NULL,
    method TEXT NOT NULL,
    input_tokens BIGINT NOT NULL DEFAULT 0,
    output_tokens BIGINT NOT NULL DEFAULT 0,
    cache_tokens BIGINT NOT NULL DEFAULT 0,
    counted_input_tokens BIGINT NOT NULL DEFAULT 0,
    counted_output_tokens BIGINT NOT NULL DEFAULT 0,
    latency_ms BIGINT NOT NULL,
    http_status BIGINT NOT NULL,
    error_code TEXT,
    cost BIGINT NOT NULL DEFAULT 0,
    free_tier BIGINT NOT NULL DEFAULT 0,
    divergent BIGINT NOT NULL DEFAULT 0,
    parent_task_id TEXT,
    transfer_id TEXT
);
CREATE INDEX usage_records_org_time ON usage_records(org_id, created_at);
CREATE INDEX usage_records_installation_time ON usage_records(installation_id, created_at);

CREATE TABLE notifications (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id),
    kind TEXT NOT NULL,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    link TEXT,
    read_at BIGINT,
    created_at BIGINT NOT NULL
);
CREATE INDEX notifications_user ON notifications(user_id, created_at);
