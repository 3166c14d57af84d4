-- Settings of an organization stored as JSON by name, each with a seeded default in code:
-- `escalation_chain` (who hears each level of each grade, `escalation::EscalationChain`).
CREATE TABLE org_settings (
    org_id TEXT NOT NULL REFERENCES organizations (id),
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (org_id, name)
);
