-- A learner has at most one question open per chat: asking a new one expires the others, inside the
-- INSERT's own statement (one round trip for "ask", on both engines).
CREATE FUNCTION attempts_expire_others() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE attempts SET status = 'expired', closed_at = NEW.created_at
    WHERE learner_id = NEW.learner_id AND chat_key = NEW.chat_key AND id <> NEW.id
      AND status IN ('open', 'choice', 'revealed');
    RETURN NULL;
END;
$$;
CREATE TRIGGER attempts_expire_others AFTER INSERT ON attempts
FOR EACH ROW EXECUTE FUNCTION attempts_expire_others();
