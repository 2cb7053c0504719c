-- smartcar-sdk token store, PostgreSQL, version 1.
-- Applied by PostgresTokenStore::migrate (recorded in smartcar_schema_migrations).
CREATE TABLE IF NOT EXISTS smartcar_tokens (
    -- The application's key (its own user id, the Smartcar user id, ...).
    key TEXT PRIMARY KEY,
    -- Access token, refresh token and expiries: 0x00 + JSON, or 0x01 + ChaCha20-Poly1305
    -- (nonce + ciphertext) when the store has a TokenCipher.
    tokens BYTEA NOT NULL,
    -- SHA-256 of the refresh token: what compare-and-swap compares.
    refresh_fingerprint BYTEA NOT NULL,
    -- Informational copies of the expiries (milliseconds since the Unix epoch), for queries
    -- such as "which users must reconnect soon".
    expires_at_ms BIGINT NOT NULL,
    refresh_expires_at_ms BIGINT NOT NULL,
    -- Incremented on every write.
    version BIGINT NOT NULL DEFAULT 1,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS smartcar_tokens_refresh_expires_at_ms
    ON smartcar_tokens (refresh_expires_at_ms);
