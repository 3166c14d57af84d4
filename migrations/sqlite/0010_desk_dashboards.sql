-- The desk and the dashboards. The scanner materializes, from each changed order's document and
-- its organization's SLA book, what the queue colours and the dashboards count: the current
-- stage's checkpoints, milestone times, rating, rework; breaches are marked when recorded.
-- `registered_by` is the user whose push created the order; callers registered by phone live in
-- `order_callers` (personal data: read only through privacy.rs).
ALTER TABLE orders ADD COLUMN registered_by TEXT;
ALTER TABLE orders ADD COLUMN channel TEXT;
ALTER TABLE orders ADD COLUMN created_how INTEGER;
ALTER TABLE orders ADD COLUMN assigned_at INTEGER;
ALTER TABLE orders ADD COLUMN accepted_at INTEGER;
ALTER TABLE orders ADD COLUMN arrived_at INTEGER;
ALTER TABLE orders ADD COLUMN completed_at INTEGER;
ALTER TABLE orders ADD COLUMN finished_at INTEGER;
ALTER TABLE orders ADD COLUMN rating INTEGER;
ALTER TABLE orders ADD COLUMN reopen_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE orders ADD COLUMN auto_confirmed INTEGER NOT NULL DEFAULT 0;
ALTER TABLE orders ADD COLUMN visited_by TEXT;
ALTER TABLE orders ADD COLUMN sla_stage TEXT;
ALTER TABLE orders ADD COLUMN sla_half_at INTEGER;
ALTER TABLE orders ADD COLUMN sla_warn_at INTEGER;
ALTER TABLE orders ADD COLUMN sla_due_at INTEGER;
ALTER TABLE orders ADD COLUMN response_breached INTEGER NOT NULL DEFAULT 0;
ALTER TABLE orders ADD COLUMN arrival_breached INTEGER NOT NULL DEFAULT 0;
ALTER TABLE orders ADD COLUMN resolution_breached INTEGER NOT NULL DEFAULT 0;
UPDATE orders SET response_breached = 1
    WHERE id IN (SELECT order_id FROM sla_events WHERE stage = 'response' AND level = 'breach');
UPDATE orders SET arrival_breached = 1
    WHERE id IN (SELECT order_id FROM sla_events WHERE stage = 'arrival' AND level = 'breach');
UPDATE orders SET resolution_breached = 1
    WHERE id IN (SELECT order_id FROM sla_events WHERE stage = 'resolution' AND level = 'breach');
-- Every order passes the scanner once, which fills the new columns.
UPDATE orders SET next_check = 0;
CREATE INDEX orders_created ON orders (org_id, created_at);
CREATE INDEX orders_dup ON orders (org_id, project, building, unit, category, created_at);

CREATE TABLE order_callers (
    order_id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    name TEXT,
    phone TEXT,
    created_at INTEGER NOT NULL
);
