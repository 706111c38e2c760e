-- Run on both servers before the corpus: the tables the corpus reads. One statement a line.
-- Each counts as a corpus item too: a setup statement eddy refuses is a disagreement.
CREATE TABLE nums (id INT PRIMARY KEY, i INT, b BIGINT, f DOUBLE PRECISION, r REAL, n NUMERIC(10,2), s TEXT, ok BOOLEAN)
INSERT INTO nums VALUES (1, 10, 100, 1.5, 0.5, 1.25, 'one', true), (2, -3, 2000000000000, 'NaN', 2.5, 3.50, 'two', false), (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL), (4, 7, 7, 'Infinity', -1, -0.01, 'four', true), (5, 0, 0, -2.25, 0.1, 100, '', false)
CREATE TABLE events (id INT PRIMARY KEY, ts TIMESTAMP, d DATE, t TIME, iv INTERVAL, tz TIMESTAMPTZ, top INT)
INSERT INTO events VALUES (1, '2026-01-01 10:00:00', '2026-01-01', '10:00:00', '1 day', '2026-01-01 10:00:00+00', 5)
INSERT INTO events VALUES (2, '2026-01-22 09:59:59', '2026-01-22', '09:59:59.5', '21 days 23:59:59', '2026-01-22 09:59:59+00', 6)
INSERT INTO events VALUES (3, '2025-12-31 23:59:59.123456', '2025-12-31', '23:59:59', '-2 hours', '2025-12-31 23:59:59+00', NULL)
CREATE TABLE kv (k TEXT PRIMARY KEY, v INT)
