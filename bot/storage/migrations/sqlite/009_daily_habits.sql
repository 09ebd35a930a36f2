-- Daily pushes that respect what the learner did (issue 21). A learner's push is skipped on a local day
-- on which they already answered a card unless `always` is set (/daily HH:MM always). Pushes left
-- unanswered are counted from `count_from` (ms; set by /daily HH:MM and by the "keep" button), so keeping
-- them starts the count again. Deliveries gain two statuses: 'skipped' (the day was already practised:
-- nothing sent, the day handled) and 'asked' (the keep / move / stop question went instead of a card).
ALTER TABLE subscriptions ADD COLUMN always INTEGER NOT NULL DEFAULT 0;
ALTER TABLE subscriptions ADD COLUMN count_from INTEGER NOT NULL DEFAULT 0;
