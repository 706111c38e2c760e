-- Nexmark q20: expand bids with their auction (category 10).
-- eddy: a join of two streams without a time bound: explicit opt-in.
-- eddy-with: unbounded_state = true
SELECT auction, bidder, price, channel, url, B.date_time AS date_timeB,
       item_name, description, initial_bid, reserve, A.date_time AS date_timeA, expires, seller, category
FROM bid B INNER JOIN auction A ON B.auction = A.id
WHERE A.category = 10
