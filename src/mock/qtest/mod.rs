//! The qTest Manager v3 mock: configuration, created state, journal and routes.
//!
//! It follows the published v3 spec (`specs/qtest-manager-v3.yaml`) where the tool depends on
//! it: the login's `Authorization: Basic base64("<site>:")`, cycle children under the
//! hyphenated `test-cycles`/`test-suites`, the lists' paging and default page sizes, steps of one
//! case only with `expand=teststep`, the list's `expandProps`/`expandSteps` defaults, search
//! steps only with `appendTestSteps=true`, runs' camelCase `parentId`/`parentType`, `201` for
//! module, cycle, run and log creates, the `data_type` codes, `default_value` and `required`
//! of fields, `user-profiles/current`, the `properties` a run's create requires (400 without
//! them), and the `x-ratelimit-remaining-*` headers. Its test-case fields list the system
//! fields `Id`, `Name` (required, as in the spec's `FieldResource` example), `Description`
//! and `Precondition`, which a create sets through its own keys, not `properties`.
//!
//! Where the spec is silent (GUESS):
//! - A step of a called case is logged with `called_test_case_id` (its case) and
//!   `parent_test_step_id` (the step calling that case; for nested calls the step in the case
//!   that calls it directly); a calling step takes no log of its own; anything else is 400.
//! - A multi-value property (check box, multi-select) is written as `[id,id]` (or one id).
//! - A required field left out of a create is refused (400) even when it has a default; an
//!   optional one gets its `is_default` value, else its `default_value`.
//! - Without the Approve permission `PUT .../approve` and a log of an unapproved version
//!   answer 403.
//! - A login without the header answers 401 `{"error":"unauthorized"}`, with another site
//!   401 `{"error":"invalid_client"}`; a spent quota 429 `{"message"}` without `Retry-After`.
//! - With a `page`, a negative `pageSize` of `test-cycles` is refused (400).
//! - `POST /search` sees every write at once unless told to lag ([`SearchLag`]); the listings
//!   always do.

pub(crate) mod api;
pub mod attachments;
mod body;
pub mod config;
mod delete;
mod design;
pub(crate) mod execution;
mod lag;
pub(crate) mod login;
pub(crate) mod persist;
pub mod quota;
mod render;
mod search;
pub(crate) mod seed;
pub mod state;
pub(crate) mod write;

pub use lag::SearchLag;
