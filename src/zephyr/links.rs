//! Links and context of Zephyr records: Jira issue links and web links (inline
//! in cases, cycles and executions), environments (names for the ids
//! executions carry) and test plans (with the cycles they link).

use serde::{Deserialize, Serialize};

use super::ZephyrClient;
use crate::error::Result;

/// The `links` of a case, cycle or execution. Every part is optional in the spec.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Links {
    /// Linked Jira issues.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_vec"
    )]
    pub issues: Vec<IssueLink>,
    /// Web links.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_vec"
    )]
    pub web_links: Vec<WebLink>,
    /// Test cycles (in a test plan's links).
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_vec"
    )]
    pub test_cycles: Vec<CycleLink>,
}

impl Links {
    /// Whether there is nothing linked.
    pub fn is_empty(&self) -> bool {
        self.issues.is_empty() && self.web_links.is_empty() && self.test_cycles.is_empty()
    }
}

/// A linked Jira issue (by id: its key and summary need Jira's own API).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct IssueLink {
    /// The Jira issue id.
    pub issue_id: u64,
    /// `COVERAGE`, `BLOCKS` or `RELATED`.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub link_type: Option<String>,
    /// Jira's REST URL of the issue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

/// A web link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct WebLink {
    /// The URL.
    pub url: String,
    /// What it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `COVERAGE`, `BLOCKS` or `RELATED`.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub link_type: Option<String>,
}

/// A test plan's link to a test cycle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct CycleLink {
    /// The cycle's id.
    pub test_cycle_id: u64,
}

/// An environment (`/environments`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct Environment {
    /// Its id, as executions name it.
    pub id: u64,
    /// Its name.
    pub name: String,
}

/// A test plan (`/testplans`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct TestPlan {
    /// Zephyr id.
    pub id: u64,
    /// Key, e.g. `PROJ-P1`.
    pub key: String,
    /// Name.
    pub name: String,
    /// Its links; `testCycles` are the cycles it groups.
    #[serde(default)]
    pub links: Option<Links>,
}

fn null_vec<'de, D, T>(d: D) -> std::result::Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

impl ZephyrClient {
    /// The project's environments; one that can't be read is left out (its
    /// executions show its id instead of a name).
    pub fn environments(&self) -> Result<Vec<Environment>> {
        let all = self.all("/environments", &[("projectKey", self.project_key())])?;
        Ok(all.into_iter().filter_map(|r| r.ok()).collect())
    }

    /// The project's test plans; one that can't be read is left out.
    pub fn test_plans(&self) -> Result<Vec<TestPlan>> {
        let all = self.all("/testplans", &[("projectKey", self.project_key())])?;
        Ok(all.into_iter().filter_map(|r| r.ok()).collect())
    }
}
