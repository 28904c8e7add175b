//! Links and context carried into qTest text: Jira issue links and web links
//! of cases, cycles and executions, environment names, and the test plans a
//! cycle belongs to. A case puts them into qTest fields labelled
//! [`JIRA_ISSUES`] and [`WEB_LINKS`] where the project has such fields; the
//! rest goes into the "Zephyr" block of the description or note.

use std::collections::HashMap;

use crate::zephyr::{Environment, Links, TestPlan};

/// Label of the Jira issue links (a qTest field of that label takes them).
pub const JIRA_ISSUES: &str = "Jira Issues";
/// Label of the web links (a qTest field of that label takes them).
pub const WEB_LINKS: &str = "Web Links";
/// Label of the test plans a cycle belongs to.
pub const TEST_PLANS: &str = "Test Plans";

/// What the run learnt of the project besides its records: environment
/// names and the test plans of each cycle. Empty when Zephyr didn't say.
#[derive(Debug, Clone, Default)]
pub struct ZephyrContext {
    environments: HashMap<u64, String>,
    /// Cycle id -> "KEY name" of each plan linking it.
    plans: HashMap<u64, Vec<String>>,
}

impl ZephyrContext {
    /// From `/environments` and `/testplans`.
    pub fn new(environments: &[Environment], plans: &[TestPlan]) -> Self {
        let mut by_cycle: HashMap<u64, Vec<String>> = HashMap::new();
        for plan in plans {
            for link in plan.links.iter().flat_map(|l| &l.test_cycles) {
                by_cycle
                    .entry(link.test_cycle_id)
                    .or_default()
                    .push(format!("{} {}", plan.key, plan.name));
            }
        }
        ZephyrContext {
            environments: environments
                .iter()
                .map(|e| (e.id, e.name.clone()))
                .collect(),
            plans: by_cycle,
        }
    }

    /// An environment's name, else its id.
    pub fn environment(&self, id: u64) -> String {
        self.environments
            .get(&id)
            .cloned()
            .unwrap_or_else(|| format!("id {id}"))
    }

    /// The test plans linking cycle `id`, as `KEY name; KEY name`.
    pub fn plans_of(&self, cycle_id: u64) -> Option<String> {
        self.plans.get(&cycle_id).map(|p| p.join("; "))
    }
}

/// `(label, text)` for the Jira issues and the web links of `links`, each
/// only when there is one.
pub(crate) fn parts(links: Option<&Links>) -> Vec<(&'static str, String)> {
    let Some(links) = links else {
        return Vec::new();
    };
    let issues: Vec<String> = links
        .issues
        .iter()
        .map(|i| match &i.link_type {
            Some(t) => format!("issue id {} ({t})", i.issue_id),
            None => format!("issue id {}", i.issue_id),
        })
        .collect();
    let web: Vec<String> = links
        .web_links
        .iter()
        .map(
            |w| match w.description.as_deref().filter(|d| !d.is_empty()) {
                Some(d) => format!("{} ({d})", w.url),
                None => w.url.clone(),
            },
        )
        .collect();
    [(JIRA_ISSUES, issues), (WEB_LINKS, web)]
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(label, v)| (label, v.join(", ")))
        .collect()
}
