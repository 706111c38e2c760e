-- Nexmark q7: highest bid per 10-second window.
-- eddy: a stream joined with a view is an arrival-time enrichment (ksqlDB semantics: a
-- bid sees the window's maximum as it is when the bid arrives), which is not q7's
-- meaning. Reading the bids through SELECT DISTINCT makes that side a view too, so the
-- join is fully incremental and the answer is q7's (identical duplicate bids, which the
-- generator does not produce in practice, would be reported once).
SELECT B.auction, B.price, B.bidder, B.date_time
FROM (SELECT DISTINCT auction, price, bidder, date_time FROM bid) B
JOIN (
    SELECT MAX(price) AS maxprice, window_end AS date_time
    FROM TUMBLE(bid, date_time, INTERVAL '10' SECOND)
    GROUP BY window_end
) B1 ON B.price = B1.maxprice
WHERE B.date_time BETWEEN B1.date_time - INTERVAL '10' SECOND AND B1.date_time
