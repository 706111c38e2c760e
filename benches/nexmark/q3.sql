-- Nexmark q3: local item suggestion (persons in OR/ID/CA selling in category 10).
-- eddy: a join of two streams without a time bound keeps both sides forever, so eddy
-- asks for an explicit opt-in.
-- eddy-with: unbounded_state = true
SELECT P.name, P.city, P.state, A.id
FROM auction AS A INNER JOIN person AS P ON A.seller = P.id
WHERE A.category = 10 AND (P.state = 'or' OR P.state = 'id' OR P.state = 'ca')
