-- Habits (issue 21): a learner's daily cap on due reviews, whether streaks are shown, whether the
-- one-line explanation of the ratings has been shown, and optional quiet hours ("22:00-07:00", local
-- time in the learner's zone) during which no push or private quiz notice is sent.
ALTER TABLE learners ADD COLUMN reviews_per_day INTEGER NOT NULL DEFAULT 100;
ALTER TABLE learners ADD COLUMN show_streak INTEGER NOT NULL DEFAULT 1;
ALTER TABLE learners ADD COLUMN rating_explained INTEGER NOT NULL DEFAULT 0;
ALTER TABLE learners ADD COLUMN quiet_hours TEXT;
