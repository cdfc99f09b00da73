-- Search keys for the office's search by name: the name lower-cased with its accents removed
-- (computed by the service, which fills them for rows created before this migration), each with
-- an index per session, so a search by the start of a name reads a range of the index rather than
-- every account of the session. Byte order ("C"), so a prefix is a range on both backends.

ALTER TABLE candidate_accounts ADD COLUMN last_name_key TEXT COLLATE "C";
ALTER TABLE candidate_accounts ADD COLUMN first_name_key TEXT COLLATE "C";
CREATE INDEX candidate_accounts_last_name_key ON candidate_accounts (session_id, last_name_key);
CREATE INDEX candidate_accounts_first_name_key ON candidate_accounts (session_id, first_name_key);
