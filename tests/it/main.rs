//! The integration tests, in one binary: every test talks to real servers on
//! 127.0.0.1 (the mocks, small in-test servers) or runs the `etlpool` binary.

mod attachments;
mod attachments_adv;
mod attachments_big;
mod attachments_links;
mod attachments_steps;
mod attachments_steps_adv;
mod attachments_stream;
#[cfg(feature = "redis")]
mod budget;
#[cfg(feature = "redis")]
mod budget_adv;
#[cfg(feature = "redis")]
mod budget_breaker;
mod cli;
mod clients;
mod coalesce;
mod coalesce_adv;
mod download_redirects;
mod download_redirects_adv;
mod failover;
mod failover_adv;
mod faults_e2e;
mod faults_exit;
mod faults_outage;
mod faults_outcomes;
mod faults_review;
mod faults_util;
mod faults_waiting;
#[cfg(feature = "redis")]
mod fleet_adversarial;
#[cfg(feature = "redis")]
mod fleet_journal;
#[cfg(feature = "redis")]
mod fleet_queue;
mod fleet_shard;
#[cfg(feature = "redis")]
mod fleet_status;
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
mod pool_caps;
mod pool_deadlines;
mod pool_dns;
mod pool_global;
mod pool_health;
mod pool_routing;
mod pool_shutdown;
mod pool_stress;
mod pool_tls;
mod pool_wire;
mod qtest_contract;
mod qtest_spec;
mod queue;
mod repair;
mod repair_adv;
#[cfg(feature = "redis")]
mod repair_redis;
mod resilience_bodies;
mod resilience_breaker;
mod resilience_pace;
mod resilience_review;
mod resilience_secrets;
mod spec_review;
mod support;
mod sync;
mod sync_adv;
mod sync_cli;
#[cfg(feature = "redis")]
mod sync_redis;
mod verify;
mod zephyr_contract;
mod zephyr_source;
