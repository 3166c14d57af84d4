-- Each organization's escalation chain (who hears each level of each grade), as JSON; the
-- seeded chain (`escalation::EscalationChain::default`) until it sets its own.
CREATE TABLE escalation_chains (
    org_id TEXT PRIMARY KEY REFERENCES organizations (id),
    chain TEXT NOT NULL
);
