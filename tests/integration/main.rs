//! Integration tests against a real PostgreSQL: one binary, one throwaway
//! cluster for all of them (see `harness`), a fresh database per test.

mod clients_jdbc;
mod clients_node;
mod cluster;
mod demo_data;
mod harness;
mod smoke;
