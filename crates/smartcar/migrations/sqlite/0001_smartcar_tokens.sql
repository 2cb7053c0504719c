-- smartcar-sdk token store, SQLite, version 1.
-- Applied by SqliteTokenStore::migrate (recorded in smartcar_schema_migrations).
CREATE TABLE IF NOT EXISTS smartcar_tokens (
    -- The application's key (its own user id, the Smartcar user id, ...).
    key TEXT PRIMARY KEY NOT NULL,
    -- Access token, refresh token and expiries: 0x00 + JSON, or 0x01 + ChaCha20-Poly1305
    -- (nonce + ciphertext) when the store has a TokenCipher.
    tokens BLOB NOT NULL,
    -- SHA-256 of the refresh token: what compare-and-swap compares.
    refresh_fingerprint BLOB NOT NULL,
    -- Informational copies of the expiries (milliseconds since the Unix epoch).
    expires_at_ms INTEGER NOT NULL,
    refresh_expires_at_ms INTEGER NOT NULL,
    -- Incremented on every write.
    version INTEGER NOT NULL DEFAULT 1,
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX IF NOT EXISTS smartcar_tokens_refresh_expires_at_ms
    ON smartcar_tokens (refresh_expires_at_ms);
-- Refresh leases: who is refreshing a key, until when (milliseconds since the Unix epoch).
CREATE TABLE IF NOT EXISTS smartcar_refresh_leases (
    key TEXT PRIMARY KEY NOT NULL,
    holder TEXT NOT NULL,
    expires_at_ms INTEGER NOT NULL
);
