-- Nexmark q9: winning bids (the highest bid of each auction before it expires).
-- eddy: the join of two streams is bounded by a column (A.expires), not a constant interval,
-- so its state cannot be freed: it runs with unbounded state; ROW_NUMBER() <= 1 is a Top-N.
-- eddy-with: unbounded_state = true
SELECT id, item_name, description, initial_bid, reserve, date_time, expires, seller, category,
       auction, bidder, price, bid_date_time
FROM (
    SELECT A.*, B.auction, B.bidder, B.price, B.date_time AS bid_date_time,
           ROW_NUMBER() OVER (PARTITION BY A.id ORDER BY B.price DESC, B.date_time ASC) AS rownum
    FROM auction A JOIN bid B ON A.id = B.auction
    WHERE B.date_time BETWEEN A.date_time AND A.expires
) tmp
WHERE rownum <= 1
