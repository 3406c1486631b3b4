-- The password life cycle (GB/T 22239-2019 level 3, identification: passwords changed
-- periodically). When each account's password was last set (NULL: before this
-- migration, counted from the account's next login), whether it must be changed at the
-- next login (set by an administrator, or for an account another person created), and
-- the hashes each account replaced, so that the last few are not used again.
ALTER TABLE users ADD COLUMN password_changed_at TIMESTAMP;
ALTER TABLE users ADD COLUMN must_change_password BIGINT NOT NULL DEFAULT 0;
CREATE TABLE password_history (
    username      TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    replaced_at   TIMESTAMP NOT NULL
);
CREATE INDEX password_history_username ON password_history (username, replaced_at);
