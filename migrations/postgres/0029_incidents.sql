-- Complaint surges and incidents (docs/incidents.md).
-- Every new order the surge detector has seen, with the time it was scanned at (its creation,
-- within the last two hours of the scan), its household and its place in the tree; an order is
-- seen once, whichever server process scans it.
CREATE TABLE surge_reports (
    order_id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    at BIGINT NOT NULL,
    household TEXT NOT NULL,
    project TEXT NOT NULL,
    building TEXT,
    riser TEXT,
    category TEXT NOT NULL,
    life_safety BOOLEAN NOT NULL
);
CREATE INDEX surge_reports_at ON surge_reports (org_id, at);
-- An incident (事件单), numbered per organization: its node (project, building, riser), category
-- (`*`: every category), level (IV … I), `state` open, resolved, or merged (into
-- `merged_into`); the score in thousandths.
CREATE TABLE incidents (
    org_id TEXT NOT NULL,
    number BIGINT NOT NULL,
    project TEXT NOT NULL,
    building TEXT,
    riser TEXT,
    category TEXT NOT NULL,
    level TEXT NOT NULL,
    state TEXT NOT NULL,
    merged_into BIGINT,
    opened_at BIGINT NOT NULL,
    first_report_at BIGINT NOT NULL,
    score_milli BIGINT NOT NULL,
    life_safety BOOLEAN NOT NULL,
    resolved_at BIGINT,
    resolved_by TEXT,
    PRIMARY KEY (org_id, number)
);
CREATE INDEX incidents_state ON incidents (org_id, state);
-- An order belongs to one incident at most.
CREATE TABLE incident_members (
    org_id TEXT NOT NULL,
    incident BIGINT NOT NULL,
    order_id TEXT NOT NULL,
    household TEXT NOT NULL,
    joined_at BIGINT NOT NULL,
    PRIMARY KEY (org_id, order_id)
);
CREATE INDEX incident_members_incident ON incident_members (org_id, incident);
-- Bumped by every write of an organization's incidents (a scan's plan, a resolve): a plan made
-- from an older revision is stale and made again.
CREATE TABLE surge_revisions (
    org_id TEXT PRIMARY KEY,
    revision BIGINT NOT NULL
);
