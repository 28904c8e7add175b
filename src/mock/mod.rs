//! Embedded mock servers of the Zephyr Scale Cloud v2 and qTest Manager v3 APIs.
//!
//! [`MockServers::start`] serves both on 127.0.0.1 ephemeral ports from a seeded dataset,
//! following `api-contract.md` sections 1, 2 and 4: Bearer tokens, the paging rules, the
//! entity shapes and error bodies, a journal of qTest writes, and fault injection
//! ([`Faults`]) switchable at run time. Nothing here uses the crate's client code, so a wrong
//! contract can't hide on both sides.
//!
//! ```
//! use etlpool::mock::{MockOptions, MockServers};
//!
//! let mocks = MockServers::start(MockOptions::seeded(42)).unwrap();
//! assert!(mocks.zephyr_url().ends_with("/v2"));
//! assert!(mocks.qtest_url().ends_with("/api/v3"));
//! mocks.faults().qtest.set_fail_rate(0.1, etlpool::mock::FailPoint::After);
//! assert_eq!(mocks.source().cases.len(), 50);
//! ```
//!
//! Modules: [`server`] is the HTTP/1.1 core (also used by the pool's tests for socket-level
//! faults); [`zephyr`] and [`qtest`] hold the data and routes; [`faults`] the switches.
//! The `etlpool mock` command is in `cli`.
//!
//! Choices where the real services are unknown (documented GUESSes of the contract):
//! - Unknown ids in a URL path or query answer 404; unknown ids referenced inside a request
//!   body (`parent_id`, `test_case.id`, `status.id`, field ids, allowed values) answer 400.
//! - qTest `GET modules?search=` matches names case-insensitively by substring, as a search
//!   box would; `POST /search` compares case-insensitively. Clients must filter exact names.
//! - A test case created without `parent_id` lands in a root module "Created via API".
//! - A test log without `test_case_version_id` attaches to the latest approved version, and
//!   is refused (400) when the case has none.
//! - `DELETE test-cases/{id}` answers 200 (the spec's code); `PUT .../approve` answers 200 with a
//!   new version id. More qTest choices are listed in [`qtest`].
//! - Zephyr: an unknown route answers 403 `{"message":"Missing Authentication Token"}` (as API
//!   Gateway does), a path outside `/v2` 404; 401 and 429 bodies of both services carry
//!   `message`.
//! - `GET /__source` (both servers) and `GET /__state` (qTest) are test hooks without auth or
//!   faults.

mod auth;
pub mod faults;
mod gate;
pub mod options;
mod paging;
pub mod qtest;
mod ratelimit;
pub mod server;
mod servers;
mod time;
pub mod zephyr;

pub use faults::{FailPoint, FaultConfig, Faults};
pub use options::{DataSizes, MockOptions};
pub use server::{
    Answer, ConnContext, Handler, HttpServer, Request, Response, ServerOptions, ServerStats,
    StatsSnapshot,
};
pub use servers::{MockFaults, MockServers};
