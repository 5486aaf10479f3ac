-- A starting pattern library; admins manage it through /v1/patterns afterwards.
INSERT INTO patterns (id, kind, value, note) VALUES
    (gen_random_uuid(), 'protected_domain', 'phantom.app', 'wallet'),
    (gen_random_uuid(), 'protected_domain', 'solflare.com', 'wallet'),
    (gen_random_uuid(), 'protected_domain', 'backpack.app', 'wallet'),
    (gen_random_uuid(), 'protected_domain', 'jup.ag', 'dex aggregator'),
    (gen_random_uuid(), 'protected_domain', 'raydium.io', 'dex'),
    (gen_random_uuid(), 'protected_domain', 'orca.so', 'dex'),
    (gen_random_uuid(), 'protected_domain', 'magiceden.io', 'marketplace'),
    (gen_random_uuid(), 'protected_domain', 'tensor.trade', 'marketplace'),
    (gen_random_uuid(), 'protected_domain', 'solana.com', 'foundation'),
    (gen_random_uuid(), 'protected_domain', 'marinade.finance', 'staking'),
    (gen_random_uuid(), 'protected_domain', 'solscan.io', 'explorer'),
    (gen_random_uuid(), 'protected_domain', 'kamino.finance', 'lending'),
    (gen_random_uuid(), 'protected_domain', 'drift.trade', 'perps'),
    (gen_random_uuid(), 'protected_domain', 'coinbase.com', 'exchange'),
    (gen_random_uuid(), 'protected_domain', 'binance.com', 'exchange'),
    (gen_random_uuid(), 'allowed_domain', 'solana.com', NULL),
    (gen_random_uuid(), 'allowed_domain', 'phantom.app', NULL),
    (gen_random_uuid(), 'allowed_domain', 'solflare.com', NULL),
    (gen_random_uuid(), 'allowed_domain', 'jup.ag', NULL),
    (gen_random_uuid(), 'allowed_domain', 'raydium.io', NULL),
    (gen_random_uuid(), 'allowed_domain', 'orca.so', NULL),
    (gen_random_uuid(), 'allowed_domain', 'magiceden.io', NULL),
    (gen_random_uuid(), 'allowed_domain', 'github.com', NULL),
    (gen_random_uuid(), 'blocked_domain', 'drainer.xyz', 'known drainer kit host'),
    (gen_random_uuid(), 'blocked_domain', 'claim-airdrop.xyz', 'fake airdrop'),
    (gen_random_uuid(), 'rule_parameter', 'max_transfers', NULL),
    (gen_random_uuid(), 'rule_parameter', 'block_score', NULL),
    (gen_random_uuid(), 'rule_parameter', 'warn_score', NULL);
UPDATE patterns SET data = '{"value": 8}' WHERE kind = 'rule_parameter' AND value = 'max_transfers';
UPDATE patterns SET data = '{"value": 70}' WHERE kind = 'rule_parameter' AND value = 'block_score';
UPDATE patterns SET data = '{"value": 30}' WHERE kind = 'rule_parameter' AND value = 'warn_score';
