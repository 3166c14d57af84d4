-- One-time sign-in codes sent by text message (POST /api/v1/login/code): one row per number, its
-- latest code as an HMAC under the database's secret (never the digits), and the number's
-- counts of codes in the current hour and day. Every check is one conditional statement, so
-- that concurrent requests (several server processes) cannot exceed a limit. Rows untouched for
-- two days are deleted (the number is personal data).
CREATE TABLE login_codes (
    phone TEXT PRIMARY KEY,
    code_hash TEXT NOT NULL,
    sent_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    attempts BIGINT NOT NULL,
    used_at BIGINT,
    hour_from BIGINT NOT NULL,
    hour_count BIGINT NOT NULL,
    day_from BIGINT NOT NULL,
    day_count BIGINT NOT NULL
);
CREATE INDEX login_codes_sent ON login_codes (sent_at);
-- Who a number signs in, in any organization: accounts, then the register's residents.
CREATE INDEX users_phone ON users (phone);
CREATE INDEX estate_residents_by_phone ON estate_residents (phone);
