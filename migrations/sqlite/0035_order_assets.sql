-- The asset an order names (its document's `asset`, docs/document.md), as the scanner reads it:
-- the failure rules count each asset's repairs (docs/maintenance.md).
ALTER TABLE order_facts ADD COLUMN asset_id TEXT;
CREATE INDEX order_facts_asset ON order_facts (org_id, asset_id, created_at) WHERE asset_id IS NOT NULL;

-- The preventive scheduler's two scans each pass (migration 0034/0035): reservations not made,
-- orders made and not known done.
CREATE INDEX maintenance_occurrences_unmade ON maintenance_occurrences (reserved_at) WHERE made_at IS NULL;
CREATE INDEX maintenance_occurrences_undone ON maintenance_occurrences (order_id)
    WHERE done IS NULL AND made_at IS NOT NULL;
