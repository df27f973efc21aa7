-- 0010: the owner column the PostgreSQL store fills when several instances
-- share it. SQLite serves one instance, so it stays empty here; it exists so
-- that both stores read conversations with the same columns and scan.
ALTER TABLE conversations ADD COLUMN owner TEXT NOT NULL DEFAULT '';
