-- The desk and the dashboards.
--
-- On `orders`, the scanner keeps the most urgent unmet stage's checkpoints under the
-- organization's SLA book (what the queue colours by; `next_deadline` follows the same book), and
-- the push that creates an order records who registered it.
--
-- `order_facts` is what the dashboards and KPIs count: one narrow row per order, written by the
-- scanner from the document (milestone times clamped as for deadlines, rating, rework) and from
-- the breaches recorded, so that a panel over 100,000 orders reads an index and small rows, never
-- a document. (An order's creation time never changes, so its place in the table does not either.)
--
-- `order_callers`: callers registered by phone (personal data: read only through privacy.rs).
ALTER TABLE orders ADD COLUMN registered_by TEXT;
ALTER TABLE orders ADD COLUMN sla_stage TEXT;
ALTER TABLE orders ADD COLUMN sla_half_at INTEGER;
ALTER TABLE orders ADD COLUMN sla_warn_at INTEGER;
ALTER TABLE orders ADD COLUMN sla_due_at INTEGER;
-- Every order passes the scanner once, which fills the new columns and its facts.
UPDATE orders SET next_check = 0;

CREATE TABLE order_facts (
    order_id TEXT NOT NULL,
    org_id TEXT NOT NULL,
    project TEXT NOT NULL,
    building TEXT,
    kind TEXT NOT NULL,
    category TEXT NOT NULL,
    grade TEXT NOT NULL,
    status TEXT NOT NULL,
    is_open INTEGER NOT NULL,
    assignee TEXT,
    registered_by TEXT,
    created_at INTEGER NOT NULL,
    -- Hour of the week created, Monday 00:00 = 0, China Standard Time.
    created_how INTEGER NOT NULL,
    assigned_at INTEGER,
    accepted_at INTEGER,
    arrived_at INTEGER,
    completed_at INTEGER,
    finished_at INTEGER,
    rating INTEGER,
    reopen_count INTEGER NOT NULL,
    auto_confirmed INTEGER NOT NULL,
    visited_by TEXT,
    response_breached INTEGER NOT NULL,
    arrival_breached INTEGER NOT NULL,
    resolution_breached INTEGER NOT NULL,
    -- Clustered by period: a panel reads one contiguous range of small rows.
    PRIMARY KEY (org_id, created_at, order_id)
) WITHOUT ROWID;
CREATE UNIQUE INDEX order_facts_order ON order_facts (order_id);
CREATE INDEX order_facts_open ON order_facts (org_id, is_open);

CREATE TABLE order_callers (
    order_id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    name TEXT,
    phone TEXT,
    created_at INTEGER NOT NULL
);
