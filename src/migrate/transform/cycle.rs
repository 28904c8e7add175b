//! Test cycles. qTest cycles have no date or status fields, so planned
//! dates, status and everything else go into the description.

use super::catalog::ZephyrList;
use super::fields;
use super::text::{self, Extras};
use super::{Context, fail};
use crate::migrate::error::{Reason, TransformError};
use crate::migrate::record::RecordKind;
use crate::qtest::{CycleParent, NewTestCycle};
use crate::zephyr::TestCycle;

/// What to create for a cycle, or for a `TEST_CYCLE` folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CyclePlan {
    /// Where to create it (`parentId`, `parentType`).
    pub parent: CycleParent,
    /// The `POST /test-cycles` body.
    pub body: NewTestCycle,
}

/// Maps a cycle: name, description with planned dates, status and other
/// fields appended, and its folder as the parent cycle (the root when none).
pub fn cycle_plan(cycle: &TestCycle, ctx: &Context<'_>) -> Result<CyclePlan, TransformError> {
    let key = cycle.id.to_string();
    let fail = fail(RecordKind::Cycle, &key);
    if cycle.name.trim().is_empty() {
        return Err(fail(Reason::Missing { field: "name" }));
    }
    let parent = match &cycle.folder {
        Some(folder) => CycleParent::TestCycle(
            ctx.required(RecordKind::CycleFolder, &folder.id.to_string())
                .map_err(&fail)?
                .id,
        ),
        None => CycleParent::Root,
    };
    let mut extras = Extras::default();
    extras.add("Key", &cycle.key);
    // Only shown, never mapped: an unknown id costs the name, not the cycle.
    let status = ctx
        .catalog
        .zephyr_name(ZephyrList::CycleStatus, cycle.status.id)
        .map_or_else(
            |_| format!("unknown (id {})", cycle.status.id),
            str::to_owned,
        );
    extras.add("Status", &status);
    extras.add(
        "Planned start",
        cycle.planned_start_date.as_deref().unwrap_or(""),
    );
    extras.add(
        "Planned end",
        cycle.planned_end_date.as_deref().unwrap_or(""),
    );
    if let Some(version) = &cycle.jira_project_version {
        extras.add("Jira version", &version.id.to_string());
    }
    if let Some(owner) = &cycle.owner {
        extras.add("Owner", &owner.account_id);
    }
    for (name, value) in &cycle.custom_fields {
        extras.add(name, &fields::display(value));
    }
    for (label, text) in super::links::parts(cycle.links.as_ref()) {
        extras.add(label, &text);
    }
    if let Some(plans) = ctx.catalog.context().plans_of(cycle.id) {
        extras.add(super::links::TEST_PLANS, &plans);
    }
    let block = extras.block();
    Ok(CyclePlan {
        parent,
        body: NewTestCycle {
            name: cycle.name.trim().to_owned(),
            description: text::paragraphs([cycle.description.as_deref(), block.as_deref()]),
        },
    })
}

/// The Zephyr cycle key that [`cycle_plan`] wrote into a qTest cycle's
/// description, so a re-run can recognise the cycle whatever its name.
pub fn cycle_key(description: &str) -> Option<&str> {
    let start = description.rfind(text::HEADING)? + text::HEADING.len();
    let block = description[start..].strip_prefix(text::BR)?;
    let first = block.split(text::BR).next()?;
    first
        .strip_prefix("Key: ")
        .map(str::trim)
        .filter(|k| !k.is_empty())
}

#[cfg(test)]
mod key_tests {
    use super::cycle_key;

    #[test]
    fn finds_the_key_written_into_the_description() {
        let d = "Regression<br><br>Zephyr fields:<br>Key: PROJ-R40<br>Status: Done";
        assert_eq!(cycle_key(d), Some("PROJ-R40"));
        assert_eq!(cycle_key("Zephyr fields:<br>Key: PROJ-R4"), Some("PROJ-R4"));
        assert_eq!(cycle_key("Zephyr fields:<br>Status: Done"), None);
        assert_eq!(cycle_key("no block"), None);
    }
}
