-- Nexmark q4: average closing price per category.
-- eddy: the time bound (B.date_time BETWEEN A.date_time AND A.expires) uses a column,
-- not a constant interval, so it cannot free join state: explicit opt-in.
-- eddy: the comma join is written as JOIN ... ON (eddy plans views without moving WHERE
-- equalities into a cross join).
-- eddy-with: unbounded_state = true
SELECT Q.category, AVG(Q.final) AS avg
FROM (
    SELECT MAX(B.price) AS final, A.category
    FROM auction A JOIN bid B ON A.id = B.auction
    WHERE B.date_time BETWEEN A.date_time AND A.expires
    GROUP BY A.id, A.category
) Q
GROUP BY Q.category
