//! Bytes as SQL → the entry point a policy-bound session calls for a
//! statement (`rewrite::secure_text_session`: parse, secure, print,
//! verify), for `benchuser` of the rewrite benchmark's fixture (the demo's
//! policies plus pgbench and TPC-H-style row policies with global values,
//! on a hand-built catalog).
//!
//! Never panic; and SQL it returns — what pgward would forward — must pass
//! verification again, checked here with PostgreSQL's grammar apart from
//! pgward: it parses, holds exactly as many statements as the client's
//! text when PostgreSQL reads that text, holds no comment, and every
//! relation of the fixture it reads is schema-qualified. A Parse message
//! (`single`) yields at most one statement.
#![no_main]

use std::sync::{Arc, LazyLock};

use libfuzzer_sys::fuzz_target;
use pg_query::protobuf::Token;
use pgward::catalog::Catalog;
use pgward::rewrite::{self, Access, Context};

struct Fixture {
    catalog: Catalog,
    access: Arc<dyn Access + Send + Sync>,
    client_path: Vec<String>,
    expanded: Vec<String>,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let (client_path, expanded) = pgward_fuzz::search_path();
    Fixture {
        catalog: pgward_fuzz::catalog(),
        access: pgward_fuzz::session(),
        client_path,
        expanded,
    }
});

/// Statements PostgreSQL reads in `sql`, if it reads it.
fn statements(sql: &str) -> Option<usize> {
    pg_query::parse(sql).ok().map(|p| p.protobuf.stmts.len())
}

fn check_forwarded(input: &str, single: bool, forwarded: &str) {
    let Some(count) = statements(forwarded) else {
        panic!("forwarded SQL PostgreSQL cannot parse:\n{input}\n→\n{forwarded}");
    };
    if single {
        assert!(count <= 1, "a Parse message became {count} statements");
    }
    if let Some(expected) = statements(input) {
        assert_eq!(
            count, expected,
            "statement count changed:\n{input}\n→\n{forwarded}"
        );
    }
    let scanned = pg_query::scan(forwarded).expect("parsed SQL scans");
    for token in &scanned.tokens {
        let kind = token.token;
        assert!(
            kind != Token::SqlComment as i32 && kind != Token::CComment as i32,
            "a comment in forwarded SQL:\n{input}\n→\n{forwarded}"
        );
    }
    // Relations of the fixture are read only through their secured,
    // schema-qualified names.
    let parsed = pg_query::parse(forwarded).expect("parsed above");
    for table in parsed.tables() {
        assert!(
            table.contains('.') || !fixture_has(&table),
            "an unqualified relation {table} forwarded:\n{input}\n→\n{forwarded}"
        );
    }
}

/// A table of the fixture's `public` schema.
fn fixture_has(name: &str) -> bool {
    FIXTURE
        .catalog
        .relations()
        .any(|r| r.name == name && r.schema == "public")
}

fuzz_target!(|data: &[u8]| {
    let Ok(sql) = std::str::from_utf8(data) else {
        return;
    };
    let fixture = &*FIXTURE;
    let ctx = Context {
        catalog: &fixture.catalog,
        search_path: &fixture.expanded,
        access: fixture.access.as_ref(),
    };
    // A simple Query, and (for texts of one statement) a Parse message.
    if let Ok(secured) = rewrite::secure_text_session(sql, false, &ctx, &fixture.client_path) {
        check_forwarded(sql, false, &secured.sql);
    }
    if !sql.contains(';')
        && let Ok(secured) = rewrite::secure_text_session(sql, true, &ctx, &fixture.client_path)
    {
        check_forwarded(sql, true, &secured.sql);
    }
});
