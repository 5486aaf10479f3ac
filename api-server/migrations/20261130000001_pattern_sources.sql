-- Where each pattern comes from: 'admin' (the /v1/patterns routes) or 'feed:<name>' (a threat
-- feed synced by the operator through PUT /v1/feeds/{name}). A feed's sync replaces only the rows
-- of its own source, so an entry added by an admin or by another feed is never touched; the same
-- domain may therefore be listed once per source.
ALTER TABLE patterns ADD COLUMN source TEXT NOT NULL DEFAULT 'admin'
    CHECK (source = 'admin' OR source ~ '^feed:[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$');
ALTER TABLE patterns DROP CONSTRAINT patterns_kind_value_key;
ALTER TABLE patterns ADD CONSTRAINT patterns_kind_value_source_key UNIQUE (kind, value, source);
CREATE INDEX patterns_source ON patterns (source) WHERE source <> 'admin';
