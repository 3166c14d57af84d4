-- An organization's own assistant models (docs/triage.md, "Learning from the desk"): trained
-- on the generated messages and the organization's labelled orders, scored on the frozen set,
-- used only if no worse than the model before (or when an administrator forces it). At most one
-- is active; none active means the built-in model. `scores` is the frozen set's figures (JSON).
CREATE TABLE triage_models (
    org_id TEXT NOT NULL,
    version TEXT NOT NULL,
    model BYTEA NOT NULL,
    trained_at BIGINT NOT NULL,
    labels BIGINT NOT NULL,
    scores TEXT NOT NULL,
    active BOOLEAN NOT NULL,
    activated_at BIGINT,
    PRIMARY KEY (org_id, version)
);
-- One active model per organization, whatever two processes do at once.
CREATE UNIQUE INDEX triage_models_active ON triage_models (org_id) WHERE active = TRUE;
