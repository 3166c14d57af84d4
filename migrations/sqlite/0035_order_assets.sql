-- The asset an order names (its document's `asset`, docs/document.md), as the scanner reads it:
-- the failure rules count each asset's repairs (docs/maintenance.md).
ALTER TABLE order_facts ADD COLUMN asset_id TEXT;
CREATE INDEX order_facts_asset ON order_facts (org_id, asset_id, created_at) WHERE asset_id IS NOT NULL;
