-- Nexmark q13: bounded side input join (bids enriched from a static table).
-- eddy: Flink's FOR SYSTEM_TIME AS OF PROCTIME() is eddy's stream-table join (the table
-- as it is when the bid arrives); the side table is static here, so that is q13's answer.
-- The side input has 10 keys (mod 10) rather than 10 000.
-- eddy-setup: CREATE TABLE side_input (key BIGINT PRIMARY KEY, value VARCHAR)
-- eddy-setup: INSERT INTO side_input VALUES (0,'zero'),(1,'one'),(2,'two'),(3,'three'),(4,'four'),(5,'five'),(6,'six'),(7,'seven'),(8,'eight'),(9,'nine')
SELECT B.auction, B.bidder, B.price, B.date_time, S.value
FROM bid B JOIN side_input S ON B.auction % 10 = S.key
