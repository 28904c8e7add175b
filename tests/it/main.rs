//! The integration tests, in one binary: every test talks to real servers on
//! 127.0.0.1 (the mocks, small in-test servers) or runs the `etlpool` binary.

mod cli;
mod clients;
mod faults_e2e;
mod faults_exit;
mod faults_outage;
mod faults_outcomes;
mod faults_util;
mod faults_waiting;
mod http;
mod migrate;
mod mock_cli;
mod mock_faults;
mod mock_qtest;
mod mock_server;
mod mock_zephyr;
mod ops_errors;
mod ops_journal;
mod ops_lock;
mod ops_logs;
mod ops_metrics;
mod ops_reports;
mod ops_summary;
mod ops_util;
mod policies;
mod pool;
mod qtest_contract;
mod qtest_spec;
mod queue;
mod support;
mod verify;
mod zephyr_contract;
mod zephyr_source;
