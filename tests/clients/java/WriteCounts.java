// Update counts of writes as the PostgreSQL JDBC driver reports them
// (executeUpdate, executeLargeUpdate, getUpdateCount, executeBatch), printed
// as `key=value` lines. The Rust test (tests/integration/write_clients.rs)
// runs this against pgward and against PostgreSQL directly and compares.
//
// Usage: java -cp postgresql.jar WriteCounts.java HOST PORT DATABASE USER PASSWORD
// The table `ledger(id, owner, amount, note)` holds rows of USER and of
// others; exits 1 when a statement threw (reported as `error=`).

import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Collectors;

public class WriteCounts {
    static void put(String key, Object value) {
        System.out.println(key + "=" + value);
    }

    static String join(int[] counts) {
        return Arrays.stream(counts).mapToObj(String::valueOf).collect(Collectors.joining(","));
    }

    public static void main(String[] args) throws Exception {
        String url = "jdbc:postgresql://" + args[0] + ":" + args[1] + "/" + args[2] + "?sslmode=disable";
        String me = args[3];
        try (Connection c = DriverManager.getConnection(url, me, args[4])) {
            run(c, me);
        } catch (Exception e) {
            put("error", e.toString().replace("\n", " "));
            System.exit(1);
        }
    }

    static void run(Connection c, String me) throws Exception {
        try (Statement s = c.createStatement()) {
            put("insert_one", s.executeUpdate(
                    "INSERT INTO ledger (id, owner, amount) VALUES (100, '" + me + "', 5)"));
        }
        try (PreparedStatement p = c.prepareStatement(
                "INSERT INTO ledger (id, owner, amount) VALUES (?, ?, ?)")) {
            for (int i = 0; i < 5; i++) {
                p.setInt(1, 101 + i);
                p.setString(2, me);
                p.setInt(3, i);
                p.addBatch();
            }
            put("prepared_batch", join(p.executeBatch()));
        }
        try (Statement s = c.createStatement()) {
            put("update_all", s.executeUpdate("UPDATE ledger SET amount = amount + 1"));
        }
        try (PreparedStatement p = c.prepareStatement(
                "UPDATE ledger SET note = ? WHERE amount > ?")) {
            p.setString(1, "big");
            p.setInt(2, 100);
            put("update_param", p.executeUpdate());
        }
        try (Statement s = c.createStatement()) {
            put("update_hidden", s.executeUpdate("UPDATE ledger SET note = 'x' WHERE id = 1"));
            s.addBatch("DELETE FROM ledger WHERE id = 100");
            s.addBatch("UPDATE ledger SET note = 'b' WHERE id = 2");
            s.addBatch("INSERT INTO ledger (id, owner, amount) VALUES (1, '" + me
                    + "', 1) ON CONFLICT (id) DO NOTHING");
            s.addBatch("DELETE FROM ledger WHERE id = 1");
            put("statement_batch", join(s.executeBatch()));
            put("large_delete", s.executeLargeUpdate("DELETE FROM ledger WHERE id BETWEEN 101 AND 103"));
            boolean rows = s.execute("INSERT INTO ledger (id, owner, amount) "
                    + "SELECT 200 + g, '" + me + "', g FROM generate_series(1, 7) g");
            put("insert_select", rows + ":" + s.getUpdateCount());
            put("upsert_update", s.executeUpdate("INSERT INTO ledger (id, owner, amount) VALUES (2, '"
                    + me + "', 1) ON CONFLICT (id) DO UPDATE SET amount = excluded.amount"));
            rows = s.execute("UPDATE ledger SET amount = amount WHERE id > 200 RETURNING id");
            List<Integer> ids = new ArrayList<>();
            try (ResultSet rs = s.getResultSet()) {
                while (rs.next()) {
                    ids.add(rs.getInt(1));
                }
            }
            ids.sort(null);
            put("update_returning", rows + ":" + ids);
        }
        // Past the driver's prepareThreshold (5): a named server-side statement.
        try (PreparedStatement p = c.prepareStatement("UPDATE ledger SET note = ? WHERE id = ?")) {
            StringBuilder counts = new StringBuilder();
            for (int i = 0; i < 7; i++) {
                p.setString(1, "p" + i);
                p.setInt(2, i % 2 == 0 ? 2 : 3);
                counts.append(p.executeUpdate());
            }
            put("prepared_repeat", counts);
        }
        c.setAutoCommit(false);
        try (Statement s = c.createStatement()) {
            int inTx = s.executeUpdate("UPDATE ledger SET note = 'tx' WHERE id <= 10");
            c.rollback();
            put("rolled_back", inTx);
            put("delete_most", s.executeUpdate("DELETE FROM ledger WHERE id < 200"));
            c.commit();
            c.setAutoCommit(true);
            // A data-modifying CTE: what it deleted.
            try (ResultSet rs = s.executeQuery(
                    "WITH d AS (DELETE FROM ledger WHERE id > 204 RETURNING id) SELECT count(*) FROM d")) {
                rs.next();
                put("cte_deleted", rs.getLong(1));
            } catch (java.sql.SQLException e) {
                put("cte_deleted", "error:" + e.getSQLState());
            }
            put("delete_rest", s.executeUpdate("DELETE FROM ledger"));
            try (ResultSet rs = s.executeQuery("SELECT count(*) FROM ledger")) {
                rs.next();
                put("left", rs.getLong(1));
            }
        }
    }
}
