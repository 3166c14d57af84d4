-- Internal notes (内部备注): what office staff and technicians write about an order for each
-- other ("已电话联系业主…", a reclassification's reason). They are never part of the order's
-- Automerge document, which owners' devices hold: they live here, are read by the detail routes
-- for staff only, and are never sent to an owner on any path.
CREATE TABLE internal_notes (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES organizations (id),
    order_id TEXT NOT NULL REFERENCES orders (id),
    author TEXT NOT NULL,
    author_role TEXT NOT NULL,
    at_ms INTEGER NOT NULL,
    text TEXT NOT NULL
);
CREATE INDEX internal_notes_order ON internal_notes (order_id, at_ms);
