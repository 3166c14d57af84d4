-- An order's document is kept as a snapshot plus a tail: `doc` holds the order's changes up to
-- feed position `doc_seq`, and the order's `feed` rows of kind 'change' after it, in feed order,
-- complete it (Automerge loads a saved document followed by change chunks). `tail_changes`
-- counts those rows; 0 means `doc` is whole and `doc_seq` is not used. A note then costs one
-- feed row instead of a rewrite of the whole document; the writer folds the tail into a new
-- snapshot when it grows long or when the order's row is rewritten anyway.
ALTER TABLE orders ADD COLUMN doc_seq BIGINT;
ALTER TABLE orders ADD COLUMN tail_changes INTEGER NOT NULL DEFAULT 0;
