CREATE STREAM pageviews (user_id INT, page TEXT, ms BIGINT, ts TIMESTAMP);
CREATE TABLE users (id INT PRIMARY KEY, name TEXT, region TEXT);
INSERT INTO pageviews VALUES (1, '/a', 120, '2026-01-01 10:00:00'), (2, '/b', 80, '2026-01-01 10:00:01');
INSERT INTO users VALUES (1, 'ann', 'eu'), (2, 'bob', 'us');
UPDATE users SET region = 'apac' WHERE id = 2;   DELETE FROM users WHERE id = 1;
CREATE MATERIALIZED VIEW per_page AS
  SELECT page, count(*) AS views, sum(ms) AS total_ms, avg(ms), min(ms), max(ms), count(DISTINCT user_id)
  FROM pageviews WHERE ms > 0 GROUP BY page HAVING count(*) > 0;
CREATE TABLE per_region AS SELECT region, count(*) AS n FROM users GROUP BY region EMIT CHANGES;
CREATE STREAM slow AS SELECT user_id, page, ms * 2 AS double_ms FROM pageviews WHERE ms > 100;
SELECT * FROM per_page ORDER BY page;
SHOW STREAMS; SHOW TABLES; SHOW MATERIALIZED VIEWS; SHOW QUERIES; DESCRIBE per_page; EXPLAIN per_page;
SELECT * FROM per_region;
DROP MATERIALIZED VIEW per_page;
