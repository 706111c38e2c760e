-- Nexmark q19: top 10 bids per auction (ROW_NUMBER).
-- eddy: ROW_NUMBER() OVER in a continuous query is refused (0A000).
-- eddy-expect: 0A000
SELECT * FROM (
    SELECT *, ROW_NUMBER() OVER (PARTITION BY auction ORDER BY price DESC) AS rank_number FROM bid
) t
WHERE rank_number <= 10
