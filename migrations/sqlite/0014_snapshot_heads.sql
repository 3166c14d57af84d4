-- The heads of each order's stored snapshot, its 32-byte change hashes one after the other: the
-- server's receipts for a document sent whole are for these and for the changes of its tail.
-- NULL in rows written before; such a snapshot's heads are read from the document itself.
ALTER TABLE orders ADD COLUMN doc_heads BLOB;
