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
    let block = extras.block();
    Ok(CyclePlan {
        parent,
        body: NewTestCycle {
            name: cycle.name.trim().to_owned(),
            description: text::paragraphs([cycle.description.as_deref(), block.as_deref()]),
        },
    })
}
