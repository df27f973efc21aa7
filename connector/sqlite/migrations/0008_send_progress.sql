-- 0008: what earlier attempts at sending a message achieved (parts sent,
-- files uploaded, an outcome left unknown), as the adapter's own JSON, so
-- that a retry after a crash resumes instead of repeating. Cleared when the
-- message is sent or failed.
ALTER TABLE messages ADD COLUMN progress BLOB;
