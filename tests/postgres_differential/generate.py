#!/usr/bin/env python3
"""Writes corpus.sql next to this file: the generated half of the Postgres differential corpus
(every type x literal form x operator x common function), followed by the hand-written edge
cases of edge_cases.sql. One statement per line; tests/postgres_differential.rs runs each on
a real PostgreSQL 15 and on eddy and compares the text of the results (or the SQLSTATE class
of the errors). Regenerate with `python3 tests/postgres_differential/generate.py`."""

import itertools
import os

HERE = os.path.dirname(os.path.abspath(__file__))
out = []


def q(expr):
    out.append(f"SELECT {expr}")


# Literal values per type, as Postgres input strings.
VALUES = {
    "smallint": ["0", "1", "-1", "32767", "-32768", "42", "7"],
    "integer": ["0", "1", "-1", "2147483647", "-2147483648", "42", "-7", "100"],
    "bigint": ["0", "1", "-1", "9223372036854775807", "-9223372036854775808", "42", "10000000000"],
    "real": ["0", "1", "-1.5", "3.25", "0.1", "1e10", "1e-6", "Infinity", "-Infinity", "NaN", "123456.789"],
    "double precision": ["0", "3", "-1.5", "0.1", "1e15", "1e16", "1e-5", "1e-06", "1.7976931348623157e308",
                         "Infinity", "-Infinity", "NaN", "2.5", "123456789.123", "-0"],
    "numeric": ["0", "1", "1.50", "-2.25", "0.1", "123456789012345678901", "3.14159", "0.000001", "100", "NaN"],
    "numeric(10,2)": ["0", "1", "1.5", "-2.255", "12345678.9", "0.004"],
    "text": ["", "abc", "Hello World", "  padded  ", "ünï", "a'b", "123"],
    "varchar": ["", "xyz", "Mixed Case"],
    "boolean": ["true", "false", "t", "f", "yes", "no", "on", "off", "1", "0"],
    "date": ["2026-01-01", "2024-02-29", "1999-12-31", "2000-01-01", "1970-01-01", "0001-01-01"],
    "timestamp": ["2026-01-01 10:00", "2026-01-01 10:00:00", "2026-01-01 10:00:00.5", "2024-02-29 23:59:59.123456",
                  "2000-01-01", "1970-01-01 00:00:00", "2026-06-15T12:30:45"],
    "timestamptz": ["2026-01-01 10:00:00+00", "2026-01-01 10:00:00+02", "2024-02-29 23:59:59.5+00",
                    "2000-01-01 00:00:00Z", "2026-06-15 12:30:45.25-05"],
    "time": ["00:00:00", "10:00", "23:59:59", "12:34:56.789", "01:02:03.000001"],
    "interval": ["1 day", "21 days 23:59:59", "1 second", "2 hours", "1 mon", "1 year 2 mons", "-1 day",
                 "00:00:01.5", "3 days 04:05:06", "90 minutes", "1 week", "0"],
    "bytea": ["\\x", "\\x00ff", "\\xdeadbeef", "abc"],
}

NUMERIC_TYPES = ["smallint", "integer", "bigint", "real", "double precision", "numeric", "numeric(10,2)"]


def lit(v):
    return "'" + v.replace("'", "''") + "'"


# 1. Every type x value x literal form.
for ty, vals in VALUES.items():
    for v in vals:
        q(f"{lit(v)}::{ty}")
        q(f"CAST({lit(v)} AS {ty})")
        if ty in ("date", "timestamp", "timestamptz", "time", "interval", "numeric", "text", "boolean",
                  "integer", "bigint", "real", "double precision"):
            q(f"{ty} {lit(v)}")

# 2. Bare literals and their types.
for v in ["1", "-1", "2147483647", "2147483648", "9223372036854775807", "9223372036854775808", "0.1", "1.50",
          "1e3", "1.5e-7", "0.1 + 0.2", "1/2", "1.0/3", "7 % 3", "-7 % 3", "2 ^ 10", "-3 ^ 2", "2 ^ 3 ^ 2",
          "10 / 4", "10.0 / 4", "3 * 1.1", "'abc'", "true", "null", "1 = 1", "'a' || 'b'"]:
    q(v)
    q(f"pg_typeof({v})")

# 3. Binary arithmetic across numeric types.
ARITH_VALUES = {
    "smallint": ["7", "-3", "32767"],
    "integer": ["7", "-3", "2147483647"],
    "bigint": ["7", "-3", "9223372036854775807"],
    "real": ["2.5", "-0.1"],
    "double precision": ["2.5", "0.1", "NaN"],
    "numeric": ["2.5", "0.1", "-3"],
    "numeric(10,2)": ["1.25"],
}
for (ta, va), (tb, vb) in itertools.product(ARITH_VALUES.items(), repeat=2):
    for a in va[:2]:
        for b in vb[:2]:
            for op in ["+", "-", "*", "/"]:
                q(f"{lit(a)}::{ta} {op} {lit(b)}::{tb}")
# overflow and division by zero
for ty, vals in ARITH_VALUES.items():
    big = vals[-1]
    for op in ["+", "*", "-"]:
        q(f"{lit(big)}::{ty} {op} {lit(big)}::{ty}")
    q(f"{lit(vals[0])}::{ty} / 0")
    q(f"{lit(vals[0])}::{ty} % {lit(vals[-1])}::{ty}")
    q(f"-{lit(vals[0])}::{ty}")
    q(f"pg_typeof({lit(vals[0])}::{ty} + 1)")
    q(f"pg_typeof({lit(vals[0])}::{ty} * 1.5)")

# 4. Comparisons on every type.
for ty, vals in VALUES.items():
    for a, b in itertools.islice(itertools.combinations(vals, 2), 6):
        for op in ["=", "<", ">=", "<>"]:
            q(f"{lit(a)}::{ty} {op} {lit(b)}::{ty}")
    q(f"{lit(vals[0])}::{ty} IS NULL")
    q(f"{lit(vals[0])}::{ty} IS DISTINCT FROM NULL")
    q(f"NULL::{ty}")
    q(f"COALESCE(NULL::{ty}, {lit(vals[-1])}::{ty})")

# 5. Casts between types.
CAST_SOURCES = {
    "integer": ["42", "-7"], "bigint": ["10000000000"], "double precision": ["3.7", "-2.5", "2.5", "1e20"],
    "numeric": ["2.5", "-3.5", "1.23456789"], "real": ["1.1"], "text": ["123", "4.5", "abc", "true"],
    "boolean": ["true"], "date": ["2026-01-01"], "timestamp": ["2026-01-01 10:30:00"],
    "timestamptz": ["2026-01-01 10:30:00+00"], "interval": ["1 day 02:00:00"], "time": ["10:30:00"],
}
CAST_TARGETS = ["smallint", "integer", "bigint", "real", "double precision", "numeric", "numeric(6,1)", "text",
                "boolean", "date", "timestamp", "timestamptz", "time", "interval", "varchar"]
for src, vals in CAST_SOURCES.items():
    for v in vals:
        for tgt in CAST_TARGETS:
            q(f"{lit(v)}::{src}::{tgt}")

# 6. Math functions.
MATH_ARGS = ["0", "1", "2.5", "-2.5", "10", "0.5", "-1", "100.123"]
for f in ["abs", "ceil", "ceiling", "floor", "round", "trunc", "sign", "sqrt", "cbrt", "exp", "ln", "log", "log10",
          "sin", "cos", "tan", "asin", "acos", "atan", "sind", "cosd", "tand", "degrees", "radians", "sinh",
          "cosh", "tanh"]:
    for a in MATH_ARGS:
        q(f"{f}({a})")
        if f in ("abs", "ceil", "floor", "round", "trunc", "sign", "sqrt", "exp", "ln"):
            q(f"{f}({lit(a)}::double precision)")
for a, b in [("2", "10"), ("2.0", "0.5"), ("10", "3"), ("-8", "3"), ("0", "0")]:
    for f in ["power", "mod", "round", "trunc", "log", "atan2", "div", "gcd", "lcm"]:
        q(f"{f}({a}, {b})")
q("pi()")
for a in ["12.345", "-12.345", "0.5", "1.5", "2.5"]:
    for d in ["0", "1", "2", "-1"]:
        q(f"round({a}, {d})")
        q(f"trunc({a}, {d})")

# 7. String functions.
STRS = ["'Hello World'", "''", "'abc'", "'  padded  '", "'ünï'", "NULL::text"]
for s in STRS:
    for f in ["length", "upper", "lower", "initcap", "reverse", "md5", "ascii", "btrim", "ltrim", "rtrim",
              "char_length", "octet_length", "bit_length", "quote_ident", "quote_literal", "to_hex"]:
        if f == "to_hex":
            continue
        q(f"{f}({s})")
    for args in ["1, 3", "2", "0, 2", "-1, 3"]:
        q(f"substr({s}, {args})")
    q(f"substring({s} from 2 for 3)")
    q(f"position('l' in {s})")
    q(f"strpos({s}, 'o')")
    q(f"replace({s}, 'l', 'L')")
    q(f"lpad({s}, 8, '*')")
    q(f"rpad({s}, 8, '-')")
    q(f"lpad({s}, 2)")
    q(f"left({s}, 3)")
    q(f"right({s}, 3)")
    q(f"left({s}, -2)")
    q(f"repeat({s}, 2)")
    q(f"split_part({s}, ' ', 2)")
    q(f"translate({s}, 'lo', '01')")
    q(f"starts_with({s}, 'He')")
    q(f"concat({s}, 1, NULL, true)")
    q(f"concat_ws('-', {s}, 'x', NULL)")
    q(f"{s} || 'x'")
    q(f"{s} || 1")
    q(f"trim(both 'd' from {s})")
    q(f"trim(leading ' ' from {s})")
    q(f"overlay({s} placing 'XX' from 2 for 3)")
    for pat in ["'%o%'", "'H%'", "'_bc'", "'%'"]:
        q(f"{s} LIKE {pat}")
        q(f"{s} ILIKE {pat}")
        q(f"{s} NOT LIKE {pat}")
        q(f"{s} SIMILAR TO {pat}")
    for pat in ["'^H'", "'o.W'", "'[0-9]+'"]:
        q(f"{s} ~ {pat}")
        q(f"{s} ~* {pat}")
        q(f"regexp_replace({s}, {pat}, 'X')")
        q(f"regexp_match({s}, {pat})")
for n in ["0", "255", "-1", "4096", "2147483647"]:
    q(f"to_hex({n})")
    q(f"chr({n} % 1000 + 65)")
q("format('%s-%s', 'a', 1)")
q("format('%I', 'Foo')")
q("format('%L', 'it''s')")
q("format('%5s|%-5s|', 'ab', 'cd')")
q("string_agg(x, ',') FROM (VALUES ('a'), ('b')) t(x)")

# 8. Date/time functions and operators.
TS = ["timestamp '2026-01-01 10:00'", "timestamp '2024-02-29 23:59:59.5'", "'2026-06-15 12:30:45'::timestamp"]
DATES = ["date '2026-01-01'", "date '2024-02-29'", "'2000-12-31'::date"]
INTERVALS = ["interval '1 day'", "interval '21 days 23:59:59'", "interval '2 hours'", "interval '1 mon'",
             "interval '1 year 2 mons 3 days'", "interval '-1 day'", "interval '00:00:01.5'"]
FIELDS = ["year", "month", "day", "hour", "minute", "second", "dow", "doy", "epoch", "quarter", "week",
          "millisecond", "microsecond", "isodow", "decade", "century"]
for t in TS + DATES:
    for fld in FIELDS:
        q(f"extract({fld} from {t})")
        q(f"date_part('{fld}', {t})")
    for unit in ["year", "quarter", "month", "week", "day", "hour", "minute", "second"]:
        q(f"date_trunc('{unit}', {t})")
    for i in INTERVALS:
        q(f"{t} + {i}")
        q(f"{t} - {i}")
    for fmt in ["YYYY-MM-DD", "HH24:MI:SS", "YYYY-MM-DD HH24:MI:SS", "Mon DD, YYYY", "Day", "DD/MM/YY",
                "YYYY\"Q\"Q", "HH12:MI AM", "FMMonth"]:
        q(f"to_char({t}, '{fmt}')")
for i in INTERVALS:
    for fld in ["day", "hour", "minute", "second", "epoch", "month", "year"]:
        q(f"extract({fld} from {i})")
    for n in ["2", "0.5", "1.5", "-1"]:
        q(f"{i} * {n}")
        q(f"{i} / {n}")
    for j in INTERVALS[:3]:
        q(f"{i} + {j}")
        q(f"{i} - {j}")
        q(f"{i} < {j}")
    q(f"justify_hours({i})")
    q(f"justify_days({i})")
    q(f"justify_interval({i})")
    q(f"-{i}")
for a, b in itertools.combinations(TS, 2):
    q(f"{a} - {b}")
    q(f"{b} - {a}")
    q(f"{a} - {b} > interval '7 days'")
    q(f"age({a}, {b})")
for a, b in itertools.combinations(DATES, 2):
    q(f"{a} - {b}")
    q(f"{a} < {b}")
for d in DATES:
    q(f"{d} + 1")
    q(f"{d} - 7")
    q(f"{d} + time '10:00'")
    q(f"{d}::timestamp")
for t in ["time '10:00'", "time '23:59:59.5'"]:
    q(f"{t} + interval '3 hours'")
    q(f"{t} - time '01:00'")
    q(f"extract(hour from {t})")
for args in ["2026, 1, 31", "2024, 2, 29", "2023, 2, 29"]:
    q(f"make_date({args})")
q("make_time(10, 30, 15.5)")
q("make_timestamp(2026, 1, 1, 10, 0, 0)")
q("make_interval(days => 3, hours => 2)")
q("to_timestamp(0)")
q("to_timestamp(1767225600.5)")
q("to_timestamp('2026-01-01 10:00', 'YYYY-MM-DD HH24:MI')")
q("to_date('01/02/2026', 'DD/MM/YYYY')")
q("timestamp '2026-01-01 10:00' AT TIME ZONE 'UTC'")
q("timestamptz '2026-01-01 10:00+00' AT TIME ZONE 'America/New_York'")
q("timestamp '2026-07-01 10:00' AT TIME ZONE 'Europe/Paris'")
q("date_trunc('day', timestamptz '2026-01-01 10:00+00')")
q("'epoch'::timestamp")
q("'infinity'::timestamp")
q("'-infinity'::date")
q("timestamp 'epoch' + interval '1 second' * 1767225600")

# 9. Conditionals and NULL handling.
for a, b in [("1", "2"), ("NULL", "2"), ("'a'", "'b'"), ("2.5", "1"), ("NULL", "NULL::int")]:
    q(f"COALESCE({a}, {b})")
    q(f"NULLIF({a}, {b})")
    q(f"GREATEST({a}, {b})")
    q(f"LEAST({a}, {b})")
    q(f"CASE WHEN {a} IS NULL THEN 'null' ELSE 'x' END")
for a, b in itertools.product(["true", "false", "NULL::boolean"], repeat=2):
    q(f"{a} AND {b}")
    q(f"{a} OR {b}")
    q(f"NOT {a}")
    q(f"{a} IS DISTINCT FROM {b}")
for x in ["1", "5", "NULL"]:
    q(f"{x} IN (1, 2, 3)")
    q(f"{x} NOT IN (1, 2, NULL)")
    q(f"{x} BETWEEN 1 AND 4")
    q(f"CASE {x} WHEN 1 THEN 'one' WHEN 5 THEN 'five' END")

# 10. Arrays.
for a in ["ARRAY[1, 2, 3]", "ARRAY['a', 'b']", "ARRAY[1.5, 2]", "ARRAY[true, false]", "ARRAY[NULL, 1]",
          "ARRAY[[1, 2], [3, 4]]", "'{1,2,3}'::int[]", "ARRAY[]::int[]"]:
    q(a)
    q(f"array_length({a}, 1)")
    q(f"cardinality({a})")
    q(f"({a})[1]")
q("array_to_string(ARRAY[1, NULL, 3], ',')")
q("array_to_string(ARRAY[1, NULL, 3], ',', '*')")
q("string_to_array('a,b,c', ',')")
q("array_append(ARRAY[1, 2], 3)")
q("array_cat(ARRAY[1], ARRAY[2, 3])")
q("array_position(ARRAY['a', 'b'], 'b')")
q("1 = ANY(ARRAY[1, 2])")
q("unnest(ARRAY[3, 1, 2])")

# 11. bytea.
for b in ["'\\x00ff'::bytea", "'abc'::bytea", "'\\xdeadbeef'::bytea"]:
    q(b)
    q(f"length({b})")
    q(f"octet_length({b})")
    q(f"md5({b})")
    q(f"encode({b}, 'hex')")
    q(f"encode({b}, 'base64')")
    q(f"{b} || '\\x01'::bytea")
    q(f"get_byte({b}, 0)")
q("decode('deadbeef', 'hex')")
q("decode('YWJj', 'base64')")
q("convert_to('abc', 'UTF8')")
q("sha256('abc'::bytea)")

with open(os.path.join(HERE, "edge_cases.sql")) as f:
    for line in f:
        line = line.strip()
        if line and not line.startswith("--"):
            out.append(line)

with open(os.path.join(HERE, "corpus.sql"), "w") as f:
    f.write("-- Generated by generate.py (do not edit): the Postgres differential corpus, one statement a line.\n")
    for s in out:
        assert "\n" not in s
        f.write(s + "\n")
print(len(out), "items")
