-- Nexmark q19: top 10 bids per auction (ROW_NUMBER).
-- eddy: a Top-N per partition (ops/top_n.rs); over the bid stream it keeps only each
-- partition's top rows. Adapted: ROW_NUMBER among bids of equal price is arbitrary, so the
-- ORDER BY is completed with tie-breakers to make the answer comparable.
SELECT * FROM (
    SELECT *, ROW_NUMBER() OVER (PARTITION BY auction ORDER BY price DESC, date_time, bidder, channel, url, extra) AS rank_number FROM bid
) t
WHERE rank_number <= 10
