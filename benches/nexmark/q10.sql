-- Nexmark q10: log to file system (bids with their day and minute as strings).
-- eddy: DataFusion's to_char takes chrono formats: 'YYYY-MM-DD' is '%Y-%m-%d', 'HH:MI' is '%H:%M'.
SELECT auction, bidder, price, date_time,
       to_char(date_time, '%Y-%m-%d') AS date, to_char(date_time, '%H:%M') AS time
FROM bid
