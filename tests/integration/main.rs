//! Integration tests against a real PostgreSQL: one binary, one throwaway
//! cluster for all of them (see `harness`), a fresh database per test.

mod auth;
mod cancel;
mod catalog_snapshot;
mod check;
mod classification;
mod clients_jdbc;
mod clients_node;
mod clients_python;
mod clients_rust;
mod cluster;
mod compat;
mod demo_data;
mod differential;
mod error_scrubbing;
mod faults;
mod fencing;
mod harness;
mod hidden_columns;
mod identity;
mod identity_core;
mod identity_tokens;
mod policy_reads;
mod pool;
mod protocol;
mod psql;
mod shutdown;
mod smoke;
mod streaming;
mod threats;
mod tls;
mod upstream;
mod write_clients;
mod write_threats;
mod writes;
