-- The desk and the dashboards.
--
-- On `orders`, the scanner keeps the most urgent unmet stage's checkpoints under the
-- organization's SLA book (what the queue colours by; `next_deadline` follows the same book), and
-- the push that creates an order records who registered it.
--
-- `order_facts` is what the dashboards and KPIs count: one narrow row per order, written by the
-- scanner from the document (milestone times clamped as for deadlines, rating, rework) and from
-- the breaches recorded, so that a panel over 100,000 orders reads an index and small rows, never
-- a document.
--
-- `order_callers`: callers registered by phone (personal data: read only through privacy.rs).
ALTER TABLE orders ADD COLUMN registered_by TEXT;
ALTER TABLE orders ADD COLUMN sla_stage TEXT;
ALTER TABLE orders ADD COLUMN sla_half_at BIGINT;
ALTER TABLE orders ADD COLUMN sla_warn_at BIGINT;
ALTER TABLE orders ADD COLUMN sla_due_at BIGINT;
-- Every order passes the scanner once, which fills the new columns and its facts.
UPDATE orders SET next_check = 0;

CREATE TABLE order_facts (
    order_id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    project TEXT NOT NULL,
    building TEXT,
    kind TEXT NOT NULL,
    category TEXT NOT NULL,
    grade TEXT NOT NULL,
    status TEXT NOT NULL,
    is_open BOOLEAN NOT NULL,
    assignee TEXT,
    registered_by TEXT,
    created_at BIGINT NOT NULL,
    -- Hour of the week created, Monday 00:00 = 0, China Standard Time.
    created_how BIGINT NOT NULL,
    assigned_at BIGINT,
    accepted_at BIGINT,
    arrived_at BIGINT,
    completed_at BIGINT,
    finished_at BIGINT,
    rating BIGINT,
    reopen_count BIGINT NOT NULL,
    auto_confirmed BIGINT NOT NULL,
    visited_by TEXT,
    response_breached BIGINT NOT NULL,
    arrival_breached BIGINT NOT NULL,
    resolution_breached BIGINT NOT NULL
);
CREATE INDEX order_facts_period ON order_facts (org_id, created_at);
CREATE INDEX order_facts_open ON order_facts (org_id, is_open);

CREATE TABLE order_callers (
    order_id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    name TEXT,
    phone TEXT,
    created_at BIGINT NOT NULL
);
