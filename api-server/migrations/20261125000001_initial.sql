-- Wallet users. The role is recomputed from ADMIN_WALLETS at every sign-in.
CREATE TABLE users (
    wallet        TEXT PRIMARY KEY,
    role          TEXT NOT NULL CHECK (role IN ('user', 'admin')),
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_login_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Refresh tokens, stored as SHA-256 hashes. Each refresh replaces the token with a new one in the
-- same family; presenting a replaced token again revokes the whole family (reuse detection).
CREATE TABLE refresh_tokens (
    id          UUID PRIMARY KEY,
    family_id   UUID NOT NULL,
    wallet      TEXT NOT NULL REFERENCES users (wallet) ON DELETE CASCADE,
    token_hash  BYTEA NOT NULL UNIQUE,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at  TIMESTAMPTZ NOT NULL,
    revoked_at  TIMESTAMPTZ,
    replaced_by UUID
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_wallet ON refresh_tokens (wallet);

-- Scan results. Raw transactions are never stored: only their hash and the verdict.
CREATE TABLE scans (
    id              UUID PRIMARY KEY,
    wallet          TEXT NOT NULL,
    kind            TEXT NOT NULL CHECK (kind IN ('transaction', 'domain', 'address')),
    content_hash    BYTEA NOT NULL,
    pattern_version BIGINT NOT NULL,
    action          TEXT NOT NULL CHECK (action IN ('NONE', 'WARN', 'BLOCK')),
    risk_score      INTEGER NOT NULL,
    result          JSONB NOT NULL,
    cached          BOOLEAN NOT NULL DEFAULT false,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX scans_wallet_created ON scans (wallet, created_at DESC);

CREATE TABLE scan_feedback (
    id         UUID PRIMARY KEY,
    scan_id    UUID NOT NULL REFERENCES scans (id) ON DELETE CASCADE,
    wallet     TEXT NOT NULL,
    verdict    TEXT NOT NULL CHECK (verdict IN ('false_positive', 'false_negative', 'correct')),
    comment    TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (scan_id, wallet)
);

-- The pattern library: block and allow lists, protected brand domains, malicious addresses and
-- rule parameters. Every change bumps the single pattern-set version, which keys the scan cache.
CREATE TABLE patterns (
    id         UUID PRIMARY KEY,
    kind       TEXT NOT NULL CHECK (kind IN ('blocked_domain', 'allowed_domain', 'protected_domain',
                                             'malicious_address', 'trusted_address', 'trusted_program',
                                             'rule_parameter')),
    value      TEXT NOT NULL,
    data       JSONB NOT NULL DEFAULT '{}'::jsonb,
    note       TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (kind, value)
);

CREATE TABLE pattern_set (
    singleton  BOOLEAN PRIMARY KEY DEFAULT true CHECK (singleton),
    version    BIGINT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
INSERT INTO pattern_set (version) VALUES (1);

-- Audit trail of pattern changes, one row per change and version.
CREATE TABLE pattern_changes (
    version    BIGINT NOT NULL,
    action     TEXT NOT NULL,
    kind       TEXT NOT NULL,
    value      TEXT NOT NULL,
    actor      TEXT NOT NULL,
    changed_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX pattern_changes_version ON pattern_changes (version);
