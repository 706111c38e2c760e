-- Hand-written edge cases (one statement a line), appended to the generated corpus.
SELECT 3::float8
SELECT 0.1::float8 + 0.2::float8
SELECT 1e-06::float8
SELECT 1e-6
SELECT 'Infinity'::float8, '-Infinity'::float8, 'NaN'::float8
SELECT 100000000000000000000::float8
SELECT 1.5e300 * 1.5e300
SELECT '1e308'::float8 * 10
SELECT 0.1 + 0.2
SELECT 1.10 + 2.205
SELECT 12345678901234567890.5 * 2
SELECT 2147483647::int + 1
SELECT -2147483648::int - 1
SELECT 32767::smallint + 1::smallint
SELECT 9223372036854775807 + 1
SELECT 2147483647 + 1
SELECT 46341 * 46341
SELECT abs(-2147483648::int)
SELECT 5 / 2, 5.0 / 2, -5 / 2, 5 % -3
SELECT 1 / 0
SELECT 1.0 / 0
SELECT 1::float8 / 0
SELECT -3 ^ 2
SELECT 2 ^ 0.5
SELECT (-8) ^ (1.0/3)
SELECT |/ 16, ||/ 27, @ -5
SELECT 5 & 3, 5 | 3, 5 # 3, ~5, 1 << 4, 256 >> 2
SELECT 5!
SELECT 'abc' SIMILAR TO 'ab%'
SELECT 'abc' SIMILAR TO '(a|x)bc'
SELECT 'abc' NOT SIMILAR TO 'a_'
SELECT TIMESTAMP '2026-01-01 10:00'
SELECT TIMESTAMP '2026-01-01 10:00:00.000001'
SELECT interval '21 days 23:59:59'
SELECT interval '1' day
SELECT interval '4' second
SELECT interval '1 year 2 months 3 days 04:05:06.789'
SELECT interval 'P1Y2M3DT4H5M6S'
SELECT interval '1 day' * 3
SELECT 3 * interval '1 day'
SELECT interval '1 second' * 3
SELECT interval '1 hour' / 4
SELECT interval '1 day' - interval '1 hour'
SELECT interval '36 hours'
SELECT interval '-1 day 02:00:00'
SELECT interval '1 mon -1 day'
SELECT timestamp '2026-01-22 09:59:59' - timestamp '2026-01-01 10:00:00'
SELECT timestamp '2026-01-22 09:59:59' - timestamp '2026-01-01 10:00:00' > interval '7 days'
SELECT date '2026-01-22' - date '2026-01-01'
SELECT now() - now()
SELECT pg_typeof(1), pg_typeof(1.5), pg_typeof('a'), pg_typeof(now()), pg_typeof(2147483648)
SELECT pg_typeof(1::smallint + 1::smallint)
SELECT pg_typeof(1 + 1.5)
SELECT pg_typeof(interval '1 day')
SELECT pg_typeof(date '2026-01-01' - date '2025-01-01')
SELECT pg_typeof(sum(1))
SELECT pg_typeof(avg(1))
SELECT pg_typeof(count(*))
SELECT extract(epoch from timestamp '2026-01-01 10:00')
SELECT extract(epoch from interval '1 day 1 second')
SELECT extract(second from timestamp '2026-01-01 10:00:05.5')
SELECT to_char(timestamp '2026-01-01 10:00', 'YYYY-MM-DD HH24:MI')
SELECT to_char(1234.5, '9999.99')
SELECT to_char(12, '000')
SELECT 'NaN'::float8 > 1
SELECT 'NaN'::float8 = 'NaN'::float8
SELECT greatest('NaN'::float8, 1)
SELECT f FROM nums ORDER BY f
SELECT f FROM nums ORDER BY f DESC
SELECT f FROM nums ORDER BY f NULLS FIRST
SELECT max(f), min(f) FROM nums
SELECT id, i, b, f, r, n, s, ok FROM nums ORDER BY id
SELECT sum(i), sum(b), sum(n), avg(i), avg(n), avg(f), count(*), count(i) FROM nums
SELECT sum(r), avg(r) FROM nums WHERE r > 0
SELECT stddev(i), variance(i), stddev_pop(n) FROM nums
SELECT bool_and(ok), bool_or(ok), every(ok) FROM nums
SELECT string_agg(s, ',' ORDER BY id) FROM nums
SELECT array_agg(id ORDER BY id) FROM nums
SELECT id, n * 2, n / 3, n + 0.005 FROM nums ORDER BY id
SELECT id, i / 2, i % 2, -i FROM nums ORDER BY id
SELECT id, f::numeric FROM nums WHERE f < 100 ORDER BY id
SELECT id, round(n), round(n, 1), trunc(n) FROM nums ORDER BY id
SELECT ok, count(*) FROM nums GROUP BY ok ORDER BY ok
SELECT id FROM nums WHERE f = 'NaN'
SELECT id FROM nums WHERE f > 1000 ORDER BY id
SELECT id, s IS NULL, coalesce(s, '?') FROM nums ORDER BY id
SELECT top FROM events ORDER BY id
SELECT top, id AS top2 FROM events WHERE top > 5
SELECT ts, d, t, iv, tz FROM events ORDER BY id
SELECT id, ts - timestamp '2026-01-01 10:00' FROM events ORDER BY id
SELECT id, ts + iv, d + 1, iv * 2 FROM events ORDER BY id
SELECT id, extract(epoch from ts), extract(dow from d), date_trunc('month', ts) FROM events ORDER BY id
SELECT id, ts::date, ts::time, d::timestamp FROM events ORDER BY id
SELECT id FROM events WHERE ts - timestamp '2026-01-01 10:00' > interval '7 days'
SELECT id FROM events WHERE iv > interval '1 day' ORDER BY id
SELECT sum(iv), max(iv), min(ts), max(d) FROM events
SELECT avg(iv) FROM events
SELECT id, to_char(ts, 'YYYY-MM-DD HH24:MI:SS') FROM events ORDER BY id
SELECT id, date_trunc(CASE WHEN id = 1 THEN 'day' ELSE 'month' END, ts) FROM events ORDER BY id
SELECT id, tz AT TIME ZONE 'UTC' FROM events ORDER BY id
INSERT INTO kv VALUES ('a', 1) RETURNING *
INSERT INTO kv VALUES ('b', 2), ('c', 3) RETURNING k, v * 10
UPDATE kv SET v = v + 1 WHERE k = 'a' RETURNING v
DELETE FROM kv WHERE k = 'c' RETURNING k
SELECT k, v FROM kv ORDER BY k
INSERT INTO kv VALUES ('d', 2147483647 + 1)
INSERT INTO kv VALUES ('e', 'x')
SELECT k, v FROM kv ORDER BY k
SELECT 1 AS top
SELECT 1 AS "limit"
SELECT x FROM (VALUES (1), (2)) AS t(x) ORDER BY x DESC LIMIT 1
SELECT x FROM generate_series(1, 5) AS g(x) ORDER BY x
SELECT * FROM generate_series(1, 10, 3)
SELECT true::int
SELECT 1::boolean
SELECT 'yes'::boolean
SELECT 'maybe'::boolean
SELECT 'abc'::int
SELECT '12.5'::int
SELECT 12.5::int, 13.5::int, -12.5::int
SELECT 2.5::float8::int, 3.5::float8::int
SELECT 70000::smallint
SELECT '9223372036854775808'::bigint
SELECT 123.456::numeric(5,2)
SELECT 1234.5::numeric(4,1)
SELECT 0.5::numeric(3,0)
SELECT '2026-02-30'::date
SELECT '25:00:00'::time
SELECT '2026-01-01 10:00:00+02'::timestamptz
SELECT '2026-01-01 10:00:00+02'::timestamp
SELECT timestamptz '2026-01-01 10:00:00+00'::timestamp
SELECT timestamp '2026-01-01 10:00'::timestamptz
SELECT now()::date = current_date
SELECT current_date - current_date
SELECT length('abc'::bytea)
SELECT '\x4142'::bytea
SELECT E'a\tb'
SELECT E'\\x41'::bytea
SELECT 'a' < 'B', 'a' < 'b', 'Z' < 'a'
SELECT upper('ß'), lower('ÀÉ')
SELECT 'abc' || NULL
SELECT repeat('ab', 3), reverse('abc')
SELECT substring('hello' from 'l+')
SELECT regexp_replace('aaa', 'a', 'b', 'g')
SELECT split_part('a,b,c', ',', -1)
SELECT length(123)
SELECT 1 IS NOT DISTINCT FROM NULL
SELECT NULL = NULL
SELECT ROW(1, 'a')
SELECT (1, 2) < (1, 3)
SELECT CASE WHEN 1 = 1 THEN 1 ELSE 2.5 END
SELECT CASE WHEN false THEN 1 END
SELECT 1 UNION SELECT 2.5 ORDER BY 1
SELECT count(*) FROM (SELECT 1 UNION ALL SELECT 1) t
SELECT exists(SELECT 1 FROM nums WHERE id = 1)
SELECT (SELECT max(id) FROM nums)
SELECT id FROM nums WHERE id IN (SELECT id FROM events) ORDER BY id
SELECT random() < 1
SELECT gen_random_uuid() IS NOT NULL
SELECT md5('abc'), sha256('abc'::bytea)
SELECT 'abc' ~ 'b', 'abc' !~ 'b'
SELECT to_number('12,345.6', '99G999D9')
SELECT width_bucket(5.35, 0.024, 10.06, 5)
SELECT scale(1.2300), trim_scale(1.2300)
SELECT factorial(5)
SELECT 10::numeric / 3
SELECT 1::numeric / 3 * 3
SELECT sqrt(2::numeric)
SELECT exp(1::numeric)
SELECT 2::numeric ^ 100
SELECT 1e100::numeric
SELECT 123456789012345678901234567890::numeric + 1
SELECT 0.000000001::numeric
SELECT -0.0::numeric
SELECT '-0'::float8
SELECT 1.0::float4 / 3
SELECT 100::float4 * 1.1::float4
SELECT 16777217::float4
SELECT 1e38::float4 * 10
