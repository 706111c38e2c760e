// pgjdbc against eddy: extended protocol for everything, named server-side prepared
// statements after prepareThreshold, typed parameters, ResultSetMetaData types, Timestamp /
// BigDecimal / Boolean values, autocommit off with commit, and fetch-size cursors (portal
// suspension). Exits non-zero on any mismatch. Usage: java JdbcClient.java PORT
import java.math.BigDecimal;
import java.sql.*;

public class JdbcClient {
    static void check(boolean ok, String what) {
        if (!ok) {
            System.err.println("FAILED: " + what);
            System.exit(1);
        }
    }

    static java.util.List<String> column(ResultSet r, String name) throws SQLException {
        java.util.List<String> out = new java.util.ArrayList<>();
        while (r.next()) out.add(r.getString(name));
        r.close();
        return out;
    }

    // DatabaseMetaData: what DBeaver, Metabase and Tableau read to show the schema.
    static void metadata(Connection c) throws SQLException {
        try (Statement s = c.createStatement()) {
            s.executeUpdate("CREATE VIEW cheap AS SELECT id, px FROM trades WHERE px < 105");
        }
        c.commit();
        DatabaseMetaData md = c.getMetaData();
        check(md.getDatabaseProductName().equals("PostgreSQL"), "product " + md.getDatabaseProductName());
        java.util.List<String> schemas = column(md.getSchemas(), "TABLE_SCHEM");
        check(schemas.contains("public") && schemas.contains("pg_catalog"), "schemas " + schemas);
        check(column(md.getTables(null, "public", "%", new String[] {"TABLE"}), "TABLE_NAME").equals(java.util.List.of("trades")), "tables");
        check(column(md.getTables(null, "public", "%", new String[] {"VIEW"}), "TABLE_NAME").equals(java.util.List.of("cheap")), "views");
        check(column(md.getTables(null, "public", "%", new String[] {"MATERIALIZED VIEW"}), "TABLE_NAME").equals(java.util.List.of("by_sym")), "matviews");
        try (ResultSet r = md.getTables(null, "public", "by_sym", null)) {
            check(r.next() && r.getString("TABLE_TYPE").equals("MATERIALIZED VIEW"), "by_sym type");
        }
        try (ResultSet r = md.getColumns(null, "public", "trades", "%")) {
            String[] names = {"id", "sym", "px", "qty", "at", "buy"};
            int[] types = {Types.INTEGER, Types.VARCHAR, Types.NUMERIC, Types.BIGINT, Types.TIMESTAMP, Types.BIT};
            for (int i = 0; i < names.length; i++) {
                check(r.next(), "column " + i);
                check(r.getString("COLUMN_NAME").equals(names[i]), "column name " + r.getString("COLUMN_NAME"));
                check(r.getInt("DATA_TYPE") == types[i], names[i] + " type " + r.getInt("DATA_TYPE"));
                check(r.getInt("ORDINAL_POSITION") == i + 1, "ordinal");
            }
            check(!r.next(), "six columns");
        }
        try (ResultSet r = md.getColumns(null, "public", "trades", "px")) {
            check(r.next() && r.getInt("COLUMN_SIZE") == 12 && r.getInt("DECIMAL_DIGITS") == 4, "numeric(12,4)");
            check(r.getString("TYPE_NAME").equals("numeric"), "type name " + r.getString("TYPE_NAME"));
        }
        try (ResultSet r = md.getColumns(null, "public", "trades", "id")) {
            check(r.next() && r.getInt("NULLABLE") == DatabaseMetaData.columnNoNulls, "key is not null");
        }
        check(column(md.getColumns(null, "public", "by_sym", "%"), "COLUMN_NAME").equals(java.util.List.of("sym", "n", "q", "top")), "view columns");
        check(column(md.getPrimaryKeys(null, "public", "trades"), "COLUMN_NAME").equals(java.util.List.of("id")), "primary key");
        check(column(md.getImportedKeys(null, "public", "trades"), "FKCOLUMN_NAME").isEmpty(), "no foreign keys");
        check(column(md.getIndexInfo(null, "public", "trades", false, false), "INDEX_NAME").contains("trades_pkey"), "index info");
        check(column(md.getTypeInfo(), "TYPE_NAME").contains("int4"), "type info");
        column(md.getFunctions(null, "public", "%"), "FUNCTION_NAME");
        c.commit();

        // Subscribing to changes through a cursor while another connection writes.
        try (Statement s = c.createStatement()) {
            s.execute("DECLARE live CURSOR FOR SUBSCRIBE by_sym WITH (SNAPSHOT = false)");
            try (Connection w = DriverManager.getConnection(c.getMetaData().getURL(), "eddy", "");
                 Statement ws = w.createStatement()) {
                ws.executeUpdate("INSERT INTO trades VALUES (100, 'NEW', 1.5, 7, TIMESTAMP '2026-01-01 11:00:00', true)");
            }
            try (ResultSet r = s.executeQuery("FETCH ALL live WITH (timeout = '5s')")) {
                check(r.next(), "a change arrives");
                check(r.getLong("eddy_diff") == 1 && r.getString("sym").equals("NEW") && r.getLong("n") == 1, "the change");
                check(!r.next(), "one change");
            }
            s.execute("CLOSE live");
        }
        c.commit();
    }

    public static void main(String[] args) throws Exception {
        String url = "jdbc:postgresql://127.0.0.1:" + args[0] + "/eddy?prepareThreshold=2";
        try (Connection c = DriverManager.getConnection(url, "eddy", "")) {
            try (Statement s = c.createStatement()) {
                s.executeUpdate("CREATE TABLE trades (id INT PRIMARY KEY, sym TEXT, px NUMERIC(12,4), qty BIGINT, at TIMESTAMP, buy BOOLEAN)");
                s.executeUpdate("CREATE MATERIALIZED VIEW by_sym AS SELECT sym, count(*) AS n, sum(qty) AS q, max(px) AS top FROM trades GROUP BY sym");
            }
            c.setAutoCommit(false);
            try (PreparedStatement p = c.prepareStatement("INSERT INTO trades VALUES (?, ?, ?, ?, ?, ?)")) {
                for (int i = 0; i < 20; i++) {
                    p.setInt(1, i);
                    p.setString(2, i % 2 == 0 ? "ABC" : "XYZ");
                    p.setBigDecimal(3, new BigDecimal("100.1250").add(new BigDecimal(i)));
                    p.setLong(4, 10L * i);
                    p.setTimestamp(5, Timestamp.valueOf("2026-01-01 10:00:00").getTime() > 0 ? new Timestamp(Timestamp.valueOf("2026-01-01 10:00:00").getTime() + i * 1000L) : null);
                    p.setBoolean(6, i % 3 == 0);
                    check(p.executeUpdate() == 1, "insert count");
                }
            }
            c.commit();
            try (PreparedStatement p = c.prepareStatement("SELECT id, sym, px, qty, at, buy FROM trades WHERE id = ?")) {
                for (int round = 0; round < 4; round++) {
                    p.setInt(1, 3);
                    try (ResultSet r = p.executeQuery()) {
                        check(r.next(), "row 3 exists");
                        check(r.getInt(1) == 3, "id");
                        check(r.getString(2).equals("XYZ"), "sym");
                        check(r.getBigDecimal(3).compareTo(new BigDecimal("103.1250")) == 0, "px " + r.getBigDecimal(3));
                        check(r.getLong(4) == 30L, "qty");
                        check(r.getTimestamp(5).equals(Timestamp.valueOf("2026-01-01 10:00:03")), "at " + r.getTimestamp(5));
                        check(r.getBoolean(6), "buy");
                        ResultSetMetaData md = r.getMetaData();
                        check(md.getColumnType(1) == Types.INTEGER, "int type");
                        check(md.getColumnType(2) == Types.VARCHAR, "text type " + md.getColumnType(2));
                        check(md.getColumnType(3) == Types.NUMERIC, "numeric type");
                        check(md.getColumnType(4) == Types.BIGINT, "bigint type");
                        check(md.getColumnType(5) == Types.TIMESTAMP, "timestamp type");
                        check(md.getColumnType(6) == Types.BIT || md.getColumnType(6) == Types.BOOLEAN, "bool type");
                        check(!r.next(), "one row");
                    }
                }
            }
            // Fetch size: the driver reads through a named portal, PortalSuspended between fetches.
            try (Statement s = c.createStatement()) {
                s.setFetchSize(3);
                int n = 0;
                try (ResultSet r = s.executeQuery("SELECT id FROM trades ORDER BY id")) {
                    while (r.next()) {
                        check(r.getInt(1) == n, "ordered ids");
                        n++;
                    }
                }
                check(n == 20, "fetched all rows: " + n);
            }
            try (PreparedStatement p = c.prepareStatement("SELECT n, q FROM by_sym WHERE sym = ?")) {
                p.setString(1, "ABC");
                try (ResultSet r = p.executeQuery()) {
                    check(r.next(), "view row");
                    check(r.getLong(1) == 10 && r.getLong(2) == 900, "view values " + r.getLong(1) + " " + r.getLong(2));
                }
            }
            c.commit();
            metadata(c);
        }
        System.out.println("jdbc ok");
    }
}
