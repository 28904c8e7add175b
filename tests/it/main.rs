//! The integration tests, in one binary: every test talks to real servers on
//! 127.0.0.1 (the mocks, small in-test servers) or runs the `etlpool` binary.

mod cli;
mod clients;
mod http;
mod migrate;
mod mock_cli;
mod mock_faults;
mod mock_qtest;
mod mock_server;
mod mock_zephyr;
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
mod queue;
mod support;
mod verify;
