-- One learner everywhere (issue 14): identities on several platforms point at one learner.
-- An identity remembers the name it had when it was linked (for /link's list) and when it joined.
-- Link codes are stored only as a SHA-256 hash, belong to the learner who asked, expire and are used once.
-- Wrong codes are counted per identity (a rate limit), and a message for the identity that issued a
-- code, when it could not be sent at once (its platform is served by another process, or the terminal),
-- waits in link_notices until that identity's front end delivers it.
ALTER TABLE identities ADD COLUMN display_name TEXT;
ALTER TABLE identities ADD COLUMN linked_at INTEGER;

CREATE TABLE link_codes (
    code_hash    TEXT    PRIMARY KEY,
    learner_id   INTEGER NOT NULL REFERENCES learners(id) ON DELETE CASCADE,
    platform     TEXT    NOT NULL,   -- the identity that asked for the code
    external_id  TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    used_at      INTEGER
) WITHOUT ROWID;
CREATE INDEX link_codes_learner ON link_codes(learner_id);

CREATE TABLE link_failures (
    id           INTEGER PRIMARY KEY,
    platform     TEXT    NOT NULL,
    external_id  TEXT    NOT NULL,
    failed_at    INTEGER NOT NULL
);
CREATE INDEX link_failures_identity ON link_failures(platform, external_id, failed_at);

CREATE TABLE link_notices (
    id           INTEGER PRIMARY KEY,
    platform     TEXT    NOT NULL,
    external_id  TEXT    NOT NULL,
    text         TEXT    NOT NULL,
    created_at   INTEGER NOT NULL
);
CREATE INDEX link_notices_identity ON link_notices(platform, external_id);
