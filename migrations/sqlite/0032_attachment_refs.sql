-- Which orders reference which blobs (docs/attachments.md), kept by the writer whenever an
-- order's attachments change (one added, one compensated). Garbage collection deletes a blob
-- no order references once its grace period has passed; downloads check the order's document.
CREATE TABLE attachment_refs (
    org_id TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    order_id TEXT NOT NULL,
    -- When it was attached, against the work (sync-core's WorkPhase: before, during, after),
    -- from the order's status as its author's device saw it.
    phase TEXT NOT NULL,
    -- Who attached it (the first attachment of these bytes on the order): a download needs
    -- them to have uploaded the bytes, so that a hash copied from another order reaches nothing.
    attached_by TEXT NOT NULL,
    PRIMARY KEY (org_id, sha256, order_id)
);
CREATE INDEX attachment_refs_order ON attachment_refs (order_id);
-- When a blob lost its last reference (NULL: it never had one, or has one): its grace period
-- runs from the later of this and `created_at`.
ALTER TABLE blobs ADD COLUMN released_at INTEGER;
-- Whether the blob store holds a thumbnail of it (`thumbs/{org}/{sha256}`, JPEG).
ALTER TABLE blobs ADD COLUMN thumbnail BOOLEAN NOT NULL DEFAULT FALSE;
