-- Problem records (问题单, docs/maintenance.md): an asset's repeated failures as the server's
-- pass raised them (sync-core's `failures` rules over the repairs naming the asset), until the
-- office makes a preventive order of one or dismisses it.
CREATE TABLE problems (
    -- A hash of the organization, the asset and the last fault that raised it: replicas raising
    -- it from the same evidence write one row.
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    asset_id TEXT NOT NULL,
    raised_at BIGINT NOT NULL,
    -- repeated, outlier
    reason TEXT NOT NULL,
    count BIGINT NOT NULL,
    days BIGINT NOT NULL,
    p_value TEXT NOT NULL,
    expected TEXT,
    -- The probabilities as decimal text (Rust's shortest round-trip form).
    -- A JSON array of the orders whose faults raised it.
    orders TEXT NOT NULL,
    -- open, ordered, dismissed
    status TEXT NOT NULL,
    order_id TEXT,
    closed_at BIGINT,
    closed_by TEXT
);
CREATE INDEX problems_org ON problems (org_id, raised_at);
CREATE INDEX problems_asset ON problems (org_id, asset_id, raised_at);
