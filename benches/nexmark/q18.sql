-- Nexmark q18: last bid per bidder and auction (deduplication with ROW_NUMBER).
-- eddy: ROW_NUMBER() OVER in a continuous query is refused (0A000).
-- eddy-expect: 0A000
SELECT auction, bidder, price, channel, url, date_time, extra
FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY bidder, auction ORDER BY date_time DESC) AS rank_number FROM bid) t
WHERE rank_number <= 1
