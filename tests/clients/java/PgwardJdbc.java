// Drives the PostgreSQL JDBC driver through pgward and prints what it observed
// as `key=value` lines on stdout (newlines and backslashes in values escaped
// as \n and \\). The Rust test (tests/integration/clients_jdbc.rs) decides
// what is right; this program only reports, and exits 1 when a step threw.
//
// Usage: java -cp postgresql.jar PgwardJdbc.java HOST PORT DATABASE USER PASSWORD
// The table `jdbc_items` (see clients_jdbc.rs) must exist and be empty.

import java.sql.BatchUpdateException;
import java.sql.Connection;
import java.sql.DatabaseMetaData;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Collectors;

public class PgwardJdbc {
    private static boolean failed = false;

    interface Step {
        void run() throws Exception;
    }

    static void put(String key, Object value) {
        String text = String.valueOf(value).replace("\\", "\\\\").replace("\n", "\\n");
        System.out.println(key + "=" + text);
    }

    static String describe(SQLException e) {
        return e.getSQLState() + " " + e.getMessage();
    }

    /** Runs a step; an exception is reported as `NAME.error` and marks the run failed. */
    static void step(String name, Step body) {
        long started = System.nanoTime();
        try {
            body.run();
        } catch (SQLException e) {
            failed = true;
            put(name + ".error", describe(e));
            SQLException next = e.getNextException();
            if (next != null) {
                put(name + ".error_next", describe(next));
            }
        } catch (Exception e) {
            failed = true;
            put(name + ".error", e.toString());
        }
        put(name + ".ms", (System.nanoTime() - started) / 1_000_000);
    }

    /** Runs SQL that should fail; returns its SQLSTATE, or "none". */
    static String sqlstateOf(Step body) throws Exception {
        try {
            body.run();
            return "none";
        } catch (SQLException e) {
            return e.getSQLState();
        }
    }

    static int count(Connection c) throws SQLException {
        try (Statement s = c.createStatement();
                ResultSet rs = s.executeQuery("SELECT count(*) FROM jdbc_items")) {
            rs.next();
            return rs.getInt(1);
        }
    }

    /**
     * Executes one PreparedStatement `times` times, reporting each result,
     * whether the driver will use a named server-side statement for the next
     * execution, and how many such statements the server holds at the end.
     */
    static void repeatPrepared(Connection c, String key, int times) throws SQLException {
        List<String> results = new ArrayList<>();
        List<String> serverPrepared = new ArrayList<>();
        try (PreparedStatement ps =
                c.prepareStatement("SELECT ?::int4 * 2 AS doubled, ?::text AS tag, ?::int8 AS big")) {
            for (int i = 1; i <= times; i++) {
                ps.setInt(1, i);
                ps.setString(2, "t" + i);
                ps.setLong(3, 10_000_000_000L + i);
                try (ResultSet rs = ps.executeQuery()) {
                    StringBuilder row = new StringBuilder();
                    int rows = 0;
                    while (rs.next()) {
                        rows++;
                        row.append(rs.getInt("doubled")).append(':')
                                .append(rs.getString("tag")).append(':')
                                .append(rs.getLong("big"));
                    }
                    results.add(rows == 1 ? row.toString() : "rows=" + rows);
                }
                serverPrepared.add(
                        ps.unwrap(org.postgresql.PGStatement.class).isUseServerPrepare() ? "1" : "0");
            }
            // The pattern is split so that this query does not match itself.
            put(key + ".server_statements", scalar(c,
                    "SELECT count(*) FROM pg_prepared_statements "
                    + "WHERE NOT from_sql AND statement LIKE '%dou' || 'bled%'"));
        }
        put(key + ".results", String.join(",", results));
        put(key + ".server_prepared", String.join("", serverPrepared));
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 5) {
            System.err.println("usage: PgwardJdbc HOST PORT DATABASE USER PASSWORD");
            System.exit(2);
        }
        String base = "jdbc:postgresql://" + args[0] + ":" + args[1] + "/" + args[2];
        java.util.Properties props = new java.util.Properties();
        props.setProperty("user", args[3]);
        props.setProperty("password", args[4]);
        props.setProperty("sslmode", "disable");
        props.setProperty("connectTimeout", "10");
        props.setProperty("socketTimeout", "30");

        try (Connection c = DriverManager.getConnection(base, props)) {
            step("connect", () -> {
                DatabaseMetaData md = c.getMetaData();
                put("connect.product", md.getDatabaseProductName());
                put("connect.server_major", md.getDatabaseMajorVersion());
                put("connect.driver", md.getDriverVersion());
                try (Statement s = c.createStatement();
                        ResultSet rs = s.executeQuery(
                                "SELECT current_database(), 'hello'::text, 1 + 1")) {
                    rs.next();
                    put("connect.database", rs.getString(1));
                    put("connect.greeting", rs.getString(2));
                    put("connect.two", rs.getInt(3));
                }
            });

            step("threshold5", () -> repeatPrepared(c, "threshold5", 12));

            step("valid", () -> put("valid.is_valid", c.isValid(2)));

            step("tables", () -> {
                DatabaseMetaData md = c.getMetaData();
                List<String> tables = new ArrayList<>();
                try (ResultSet rs = md.getTables(null, "public", "%", new String[] {"TABLE"})) {
                    while (rs.next()) {
                        tables.add(rs.getString("TABLE_SCHEM") + "." + rs.getString("TABLE_NAME")
                                + ":" + rs.getString("TABLE_TYPE"));
                    }
                }
                put("tables.list", String.join(",", tables));
            });

            step("columns", () -> {
                DatabaseMetaData md = c.getMetaData();
                List<String> columns = new ArrayList<>();
                try (ResultSet rs = md.getColumns(null, "public", "jdbc_items", "%")) {
                    while (rs.next()) {
                        columns.add(rs.getInt("ORDINAL_POSITION") + ":" + rs.getString("COLUMN_NAME")
                                + ":" + rs.getString("TYPE_NAME") + ":" + rs.getInt("DATA_TYPE")
                                + ":" + rs.getInt("NULLABLE") + ":" + rs.getString("IS_AUTOINCREMENT"));
                    }
                }
                put("columns.list", String.join(",", columns));
            });

            step("batch", () -> {
                try (PreparedStatement ps =
                        c.prepareStatement("INSERT INTO jdbc_items (name, qty, price) VALUES (?, ?, ?)")) {
                    String[] names = {"apple", "pear", "plum", "fig", "kiwi"};
                    for (int i = 0; i < names.length; i++) {
                        ps.setString(1, names[i]);
                        ps.setInt(2, i + 1);
                        ps.setBigDecimal(3, new java.math.BigDecimal((i + 1) + ".25"));
                        ps.addBatch();
                    }
                    put("batch.counts", Arrays.stream(ps.executeBatch())
                            .mapToObj(Integer::toString).collect(Collectors.joining(",")));
                }
                try (Statement s = c.createStatement()) {
                    s.addBatch("UPDATE jdbc_items SET qty = qty * 10 WHERE qty >= 4");
                    s.addBatch("DELETE FROM jdbc_items WHERE name = 'fig'");
                    s.addBatch("INSERT INTO jdbc_items (name, qty, price) VALUES ('lime', 0, 0.5)");
                    put("batch.statement_counts", Arrays.stream(s.executeBatch())
                            .mapToObj(Integer::toString).collect(Collectors.joining(",")));
                }
                List<String> rows = new ArrayList<>();
                try (Statement s = c.createStatement();
                        ResultSet rs = s.executeQuery(
                                "SELECT id, name, qty, price FROM jdbc_items ORDER BY id")) {
                    while (rs.next()) {
                        rows.add(rs.getInt(1) + ":" + rs.getString(2) + ":" + rs.getInt(3) + ":"
                                + rs.getBigDecimal(4).toPlainString());
                    }
                }
                put("batch.rows", String.join(",", rows));
            });

            step("lookup", () -> {
                // A prepared statement over the table, past the threshold.
                List<String> found = new ArrayList<>();
                try (PreparedStatement ps =
                        c.prepareStatement("SELECT name FROM jdbc_items WHERE id = ? AND qty >= ?")) {
                    for (int round = 0; round < 3; round++) {
                        for (int id = 1; id <= 6; id++) {
                            ps.setInt(1, id);
                            ps.setInt(2, 0);
                            try (ResultSet rs = ps.executeQuery()) {
                                found.add(rs.next() ? rs.getString(1) : "-");
                            }
                        }
                    }
                }
                put("lookup.found", String.join(",", found));
            });

            step("transaction", () -> {
                int before = count(c);
                c.setAutoCommit(false);
                try (PreparedStatement ps =
                        c.prepareStatement("INSERT INTO jdbc_items (name, qty, price) VALUES (?, 1, 1)")) {
                    ps.setString(1, "rolled back");
                    ps.executeUpdate();
                    int inside = count(c);
                    c.rollback();
                    int afterRollback = count(c);
                    ps.setString(1, "committed");
                    ps.executeUpdate();
                    c.commit();
                    put("transaction.counts", before + "," + inside + "," + afterRollback + ","
                            + count(c));
                } finally {
                    c.setAutoCommit(true);
                }
                try (Statement s = c.createStatement();
                        ResultSet rs = s.executeQuery(
                                "SELECT count(*) FROM jdbc_items WHERE name = 'rolled back'")) {
                    rs.next();
                    put("transaction.rolled_back_rows", rs.getInt(1));
                }
            });

            step("errors", () -> {
                put("errors.divide", sqlstateOf(() -> {
                    try (Statement s = c.createStatement()) {
                        s.executeQuery("SELECT 1/0");
                    }
                }));
                put("errors.prepared_divide", sqlstateOf(() -> {
                    try (PreparedStatement ps = c.prepareStatement("SELECT ?::int4 / 0")) {
                        ps.setInt(1, 1);
                        ps.executeQuery();
                    }
                }));
                put("errors.syntax", sqlstateOf(() -> {
                    try (Statement s = c.createStatement()) {
                        s.execute("SELEC 1");
                    }
                }));
                put("errors.after", scalar(c, "SELECT 'ok'"));
                // Inside a transaction: the error aborts it until rollback.
                c.setAutoCommit(false);
                try {
                    put("errors.in_tx", sqlstateOf(() -> scalar(c, "SELECT 1/0")));
                    put("errors.aborted", sqlstateOf(() -> scalar(c, "SELECT 1")));
                    c.rollback();
                    put("errors.after_tx", scalar(c, "SELECT 'ok'"));
                    c.commit();
                } finally {
                    c.setAutoCommit(true);
                }
                // A batch that fails part-way: a duplicate key.
                try (PreparedStatement ps =
                        c.prepareStatement("INSERT INTO jdbc_items (id, name, qty, price) VALUES (?, ?, 0, 0)")) {
                    ps.setInt(1, 1000);
                    ps.setString(2, "first");
                    ps.addBatch();
                    ps.setInt(1, 1000);
                    ps.setString(2, "duplicate");
                    ps.addBatch();
                    try {
                        ps.executeBatch();
                        put("errors.batch", "none");
                    } catch (BatchUpdateException e) {
                        SQLException cause = e.getNextException();
                        put("errors.batch", cause != null ? cause.getSQLState() : e.getSQLState());
                    }
                }
                put("errors.batch_rows",
                        scalar(c, "SELECT count(*) FROM jdbc_items WHERE id = 1000"));
                put("errors.valid_after", c.isValid(2));
            });
        }

        // A connection that prepares on the server from the first execution.
        java.util.Properties eager = (java.util.Properties) props.clone();
        eager.setProperty("prepareThreshold", "1");
        try (Connection c = DriverManager.getConnection(base, eager)) {
            step("threshold1", () -> repeatPrepared(c, "threshold1", 10));
            step("threshold1_valid", () -> put("threshold1_valid.is_valid", c.isValid(2)));
        }

        System.out.flush();
        System.exit(failed ? 1 : 0);
    }

    static String scalar(Connection c, String sql) throws SQLException {
        try (Statement s = c.createStatement(); ResultSet rs = s.executeQuery(sql)) {
            rs.next();
            return rs.getString(1);
        }
    }
}
