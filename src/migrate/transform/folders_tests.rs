use super::*;
use crate::migrate::transform::fixtures;
use crate::zephyr::FolderType;

fn folder(id: u64, parent_id: Option<u64>, index: i64) -> Folder {
    Folder {
        id,
        parent_id,
        name: format!("F{id}"),
        index,
        folder_type: FolderType::TestCase,
        project: None,
    }
}

fn ids(order: &[&Folder]) -> Vec<u64> {
    order.iter().map(|f| f.id).collect()
}

fn reasons(errors: &[TransformError]) -> Vec<(String, Reason)> {
    errors
        .iter()
        .map(|e| (e.key.clone(), e.reason.clone()))
        .collect()
}

#[test]
fn parents_first_and_siblings_by_index() {
    // Listed children first and siblings out of order.
    let folders = [
        folder(6, Some(2), 0),
        folder(5, Some(1), 1),
        folder(4, Some(1), 0),
        folder(3, None, 0),
        folder(2, None, 2),
        folder(1, None, 1),
        folder(7, Some(2), 0),
    ];
    let (order, errors) = folder_order(&folders, RecordKind::Module);
    assert!(errors.is_empty(), "{errors:?}");
    // Equal indexes (6 and 7) fall back to id order.
    assert_eq!(ids(&order), [3, 1, 4, 5, 2, 6, 7]);
}

#[test]
fn a_deep_tree_is_ordered_without_recursion() {
    const DEPTH: u64 = 100_000;
    let mut folders: Vec<Folder> = (1..=DEPTH)
        .map(|id| folder(id, (id > 1).then(|| id - 1), 0))
        .collect();
    folders.reverse();
    let (order, errors) = folder_order(&folders, RecordKind::Module);
    assert!(errors.is_empty());
    assert_eq!(ids(&order), (1..=DEPTH).collect::<Vec<_>>());
}

#[test]
fn orphans_loops_and_their_descendants_are_errors_and_the_rest_goes_on() {
    let folders = [
        folder(1, None, 0),
        folder(2, Some(99), 0), // orphan
        folder(3, Some(2), 0),  // below the orphan
        folder(4, Some(5), 0),  // loop 4 -> 5 -> 4
        folder(5, Some(4), 0),
        folder(6, Some(4), 0), // below the loop
        folder(7, Some(7), 0), // its own parent
        folder(8, Some(1), 0),
    ];
    let (order, errors) = folder_order(&folders, RecordKind::CycleFolder);
    assert_eq!(ids(&order), [1, 8]);
    assert!(errors.iter().all(|e| e.kind == RecordKind::CycleFolder));
    assert_eq!(
        reasons(&errors),
        [
            ("2".into(), Reason::OrphanFolder { parent_id: 99 }),
            ("3".into(), Reason::AncestorFailed { ancestor_id: 2 }),
            (
                "4".into(),
                Reason::FolderCycle {
                    path: vec![4, 5, 4]
                }
            ),
            (
                "5".into(),
                Reason::FolderCycle {
                    path: vec![5, 4, 5]
                }
            ),
            ("6".into(), Reason::AncestorFailed { ancestor_id: 4 }),
            ("7".into(), Reason::FolderCycle { path: vec![7, 7] }),
        ]
    );
}

#[test]
fn duplicates_are_ignored_when_equal_and_errors_when_not() {
    let mut renamed = folder(2, None, 1);
    renamed.name = "other".into();
    let folders = [
        folder(1, None, 0),
        folder(1, None, 0),
        folder(2, None, 1),
        renamed,
    ];
    let (order, errors) = folder_order(&folders, RecordKind::Module);
    assert_eq!(ids(&order), [1, 2]);
    assert_eq!(
        order[1].name, "F2",
        "the first of two different folders is kept"
    );
    assert_eq!(reasons(&errors), [("2".into(), Reason::DuplicateFolder)]);
}

#[test]
fn module_bodies_under_their_parent_module() {
    let catalog = fixtures::catalog();
    let migrated = fixtures::migrated();
    fixtures::with_context(&catalog, &migrated, |ctx| {
        let root = module_plan(&folder(100_006, None, 0), ctx).unwrap();
        assert_eq!(root.parent_id, None);
        assert_eq!(
            serde_json::to_value(&root.body).unwrap(),
            serde_json::json!({"name": "F100006", "description": ""})
        );
        let child = module_plan(&folder(7, Some(100_006), 0), ctx).unwrap();
        assert_eq!(child.parent_id, Some(2_107_619));
        assert_eq!(child.body.parent_id, Some(2_107_619));
        let err = module_plan(&folder(8, Some(7), 0), ctx).unwrap_err();
        assert_eq!(err.to_string(), "module 8: module 7 is not migrated");
        let mut unnamed = folder(9, None, 0);
        unnamed.name = " ".into();
        assert!(module_plan(&unnamed, ctx).is_err());
    });
}

#[test]
fn cycle_folders_become_cycles_under_their_parent_cycle() {
    let catalog = fixtures::catalog();
    let migrated = fixtures::migrated();
    fixtures::with_context(&catalog, &migrated, |ctx| {
        let root = cycle_folder_plan(&folder(100_010, None, 0), ctx).unwrap();
        assert_eq!(root.parent, CycleParent::Root);
        assert_eq!(root.body.name, "F100010");
        let child = cycle_folder_plan(&folder(11, Some(100_010), 0), ctx).unwrap();
        assert_eq!(child.parent, CycleParent::TestCycle(67_000));
        let err = cycle_folder_plan(&folder(12, Some(11), 0), ctx).unwrap_err();
        assert_eq!(err.kind, RecordKind::CycleFolder);
        assert_eq!(
            err.reason,
            Reason::ParentNotMigrated {
                kind: RecordKind::CycleFolder,
                key: "11".into()
            }
        );
    });
}
