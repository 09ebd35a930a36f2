-- Several processes on one database (issue 16). SQLite keeps one process; the same columns serve it.
-- telegram_updates: the update ids a webhook already handled (Telegram re-sends an update whose
-- response was slow), so a re-sent update is answered once; old rows are pruned.
-- deliveries.lease_until: a claimed delivery belongs to its claimer until then; after it, another process
-- takes it over (its claimer died). deliveries.send_at: the send slot it was given (ms).
-- send_slots: the next free send slot per platform, shared by every process, so the fleet together
-- stays under the platform's send rate.
-- matches.owner / lease_until: the process that plays a running match, and until when; a match whose
-- lease ran out is taken over by another process.
CREATE TABLE telegram_updates (
    update_id    INTEGER PRIMARY KEY,
    received_at  INTEGER NOT NULL,
    replica      TEXT    NOT NULL
);
CREATE INDEX telegram_updates_age ON telegram_updates(received_at);

ALTER TABLE deliveries ADD COLUMN lease_until INTEGER;
ALTER TABLE deliveries ADD COLUMN send_at INTEGER;

CREATE TABLE send_slots (
    platform     TEXT    PRIMARY KEY,
    next_at      INTEGER NOT NULL
) WITHOUT ROWID;

ALTER TABLE matches ADD COLUMN owner TEXT;
ALTER TABLE matches ADD COLUMN lease_until INTEGER;
