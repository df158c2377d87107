-- Calls the gateway refused after it knew the key (rate limits, daily limits, budget,
-- credits, bad bodies, capacity, …) leave a usage record too, marked `refused`: they show
-- in the org's audit log and error rate, but never reached the agent, so the publisher's
-- figures and a key's daily request count leave them out.
ALTER TABLE usage_records ADD COLUMN refused BIGINT NOT NULL DEFAULT 0;
