-- Failed logins inside the lockout window (等保三级: login failure handling). A row per
-- failure, by the name tried (known or not) and the client address; an account's rows
-- go when it signs in or is unlocked, and rows older than the window are pruned.
CREATE TABLE login_failures (
    username TEXT NOT NULL,
    address  TEXT NOT NULL,
    at       TIMESTAMP NOT NULL
);
CREATE INDEX login_failures_username ON login_failures (username, at);
CREATE INDEX login_failures_address ON login_failures (address, at);
