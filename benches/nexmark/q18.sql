-- Nexmark q18: last bid per bidder and auction (deduplication with ROW_NUMBER).
-- eddy: a Top-N per partition (ops/top_n.rs); over the bid stream it keeps only each
-- partition's top rows. Adapted: the generator gives a bidder several bids on one auction
-- with the same date_time, and ROW_NUMBER picks among ties arbitrarily (in DataFusion as in
-- SQL), so the ORDER BY is completed with tie-breakers to make the answer comparable.
SELECT auction, bidder, price, channel, url, date_time, extra
FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY bidder, auction ORDER BY date_time DESC, price DESC, channel, url, extra) AS rank_number FROM bid) t
WHERE rank_number <= 1
