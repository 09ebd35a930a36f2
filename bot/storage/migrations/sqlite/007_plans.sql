-- A learner's plan to an interview date: at most one per learner. The date is a local day in the
-- plan's time zone; the cap the plan set and the one it replaced (put back when the plan ends, unless the
-- learner changed it meanwhile); how many of the plan's cards were unseen when it was set.
CREATE TABLE plans (
    learner_id            INTEGER PRIMARY KEY REFERENCES learners(id) ON DELETE CASCADE,
    target_day            TEXT    NOT NULL,                -- YYYY-MM-DD
    timezone              TEXT    NOT NULL,
    topics                TEXT    NOT NULL DEFAULT '[]',   -- JSON list of topic slugs; [] means every topic
    new_per_day           INTEGER NOT NULL,
    previous_new_per_day  INTEGER NOT NULL,
    start_day             TEXT    NOT NULL,                -- YYYY-MM-DD, when the plan was set
    planned               INTEGER NOT NULL,
    rushed                INTEGER NOT NULL DEFAULT 0,
    created_at            INTEGER NOT NULL
);
