-- Nexmark q6: average selling price per seller (last 10 closed auctions).
-- eddy: window functions (ROW_NUMBER() OVER) in a continuous query are refused (0A000).
-- eddy-expect: 0A000
SELECT Q.seller, AVG(Q.final) OVER (PARTITION BY Q.seller ORDER BY Q.date_time ROWS BETWEEN 10 PRECEDING AND CURRENT ROW) AS avg
FROM (
    SELECT MAX(B.price) AS final, A.seller, B.date_time
    FROM auction AS A JOIN bid AS B ON A.id = B.auction
    WHERE B.date_time BETWEEN A.date_time AND A.expires
    GROUP BY A.id, A.seller, B.date_time
) AS Q
