-- Nexmark q11: user sessions (bids per bidder per session with a 10-second gap).
-- eddy: SESSION(table, time, gap) with window_start/window_end, in place of Flink's
-- GROUP BY SESSION(...) and SESSION_START/SESSION_END.
SELECT bidder, count(*) AS bid_count, window_start AS starttime, window_end AS endtime
FROM SESSION(bid, date_time, INTERVAL '10' SECOND)
GROUP BY bidder, window_start, window_end
