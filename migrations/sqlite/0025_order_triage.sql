-- The assistant's reading of each order's description when the scanner first reads the order
-- (docs/triage.md): its kind, category, grade and urgent flag with the confidence (in thousandths), whether it
-- abstained, the life-safety rule and the model's version. Labels only, no text. A suggestion
-- stands until a person confirms or sets aside the order's classification (`confirmed_at`);
-- an order registered by office staff is confirmed at once (a person chose).
CREATE TABLE order_triage (
    order_id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    category TEXT NOT NULL,
    grade TEXT NOT NULL,
    urgent BOOLEAN NOT NULL,
    confidence_permille INTEGER NOT NULL,
    abstain BOOLEAN NOT NULL,
    rule TEXT,
    model TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    confirmed_by TEXT,
    confirmed_at INTEGER,
    -- accepted (the suggestion taken), dismissed (set aside), reclassified (changed by hand),
    -- preexisting (first read long after the order was made: history, not news)
    answer TEXT
);
-- The desk's strip of urgent reports no person has looked at yet.
CREATE INDEX order_triage_urgent ON order_triage (org_id, created_at) WHERE urgent = TRUE AND confirmed_at IS NULL;
-- The queue's `suggested=pending` and the organizations' labels.
CREATE INDEX order_triage_answered ON order_triage (org_id, confirmed_at);
