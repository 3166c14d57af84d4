-- Notes the server writes itself (a reclassification's) in English beside the Chinese text, so
-- that the desk in English shows them in English. NULL for what people wrote.
ALTER TABLE internal_notes ADD COLUMN text_en TEXT;
