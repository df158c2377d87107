-- Fixed-window counters of the account endpoints' throttles (failed log-ins per email and
-- per client address, sign-ups per address), shared by every replica and kept across
-- restarts. The subject is a SHA-256 of what is counted: no email or address in clear.
CREATE TABLE throttles (
    subject TEXT PRIMARY KEY,
    count BIGINT NOT NULL,
    window_start BIGINT NOT NULL,
    window_end BIGINT NOT NULL
);
CREATE INDEX throttles_window_end ON throttles(window_end);
