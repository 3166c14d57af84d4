-- Attachments' bytes (docs/attachments.md): the blobs an organization stored, by content hash,
-- and resumable uploads (tus 1.0) with the chunks each has received. The bytes are in the blob
-- store (`serve --blob-dir`), never in the database nor in an order's document.
CREATE TABLE blobs (
    org_id TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    mime TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    PRIMARY KEY (org_id, sha256)
);
-- An upload: what its client declared (length, hash, kind), what the server holds (`received`
-- bytes in its chunks), and how it ended (`state` open, complete, or failed with `fault`).
CREATE TABLE uploads (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    kind TEXT NOT NULL,
    length INTEGER NOT NULL,
    received INTEGER NOT NULL,
    state TEXT NOT NULL,
    fault TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX uploads_user ON uploads (user_id, state);
-- The chunks of an upload in the blob store, in the order of their first byte.
CREATE TABLE upload_chunks (
    upload_id TEXT NOT NULL,
    start INTEGER NOT NULL,
    length INTEGER NOT NULL,
    object TEXT NOT NULL,
    PRIMARY KEY (upload_id, start)
);
