-- Nexmark q12: bids per bidder in processing-time windows.
-- eddy: processing time (PROCTIME(), here now()) makes a view's answer depend on when it
-- runs; time-dependent functions in continuous queries are refused (0A000).
-- eddy-expect: 0A000
SELECT bidder, count(*) AS bid_count, date_trunc('second', now()) AS window_start
FROM bid
GROUP BY bidder, date_trunc('second', now())
