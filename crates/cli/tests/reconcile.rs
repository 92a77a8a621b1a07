//! Metadata writes interrupted between their commits roll forward (issue 8, item 5): a cell
//! that only staged a write others committed catches up on the next read; a write nobody
//! committed stays invisible.

use keyfrag_cli::testbed::{Testbed, TestbedOptions};
use keyfrag_client::{Attr, ObjectRecord};
use keyfrag_proto::objects::StageRequest;

fn object(label: &[u8]) -> ObjectRecord {
    ObjectRecord {
        id: keyfrag_core::random::uid_hex().unwrap(),
        key_uid: None,
        attrs: vec![Attr {
            kind: 3,
            value: label.to_vec(),
        }],
    }
}

/// Put cell `i` back to the state "staged `stage`, not committed": what a cell that crashed
/// after staging and before its commit holds when it comes back.
fn uncommit(bed: &Testbed, i: usize, stage: &StageRequest) {
    let db = rusqlite::Connection::open(bed.cell_database(i)).unwrap();
    let content = serde_json::to_string(stage).unwrap();
    assert_eq!(
        db.execute(
            "UPDATE staged_tx SET committed = 0, content = ?1 WHERE txid = ?2",
            rusqlite::params![content, stage.txid],
        )
        .unwrap(),
        1
    );
    for o in &stage.puts {
        db.execute("DELETE FROM objects WHERE id = ?1", [&o.id])
            .unwrap();
    }
}

fn last_txid(bed: &Testbed, i: usize) -> String {
    let db = rusqlite::Connection::open(bed.cell_database(i)).unwrap();
    db.query_row(
        "SELECT txid FROM staged_tx ORDER BY rowid DESC LIMIT 1",
        [],
        |r| r.get(0),
    )
    .unwrap()
}

#[test]
fn a_write_committed_on_some_cells_rolls_forward_on_the_next_read() {
    let mut bed = Testbed::start(TestbedOptions::default());
    let cluster = bed.cluster();
    let kept = object(b"kept");
    let late = object(b"late");
    cluster.write_objects(vec![kept.clone()], vec![]).unwrap();
    let hash = cluster.write_objects(vec![late.clone()], vec![]).unwrap();
    let stage = StageRequest {
        txid: last_txid(&bed, 2),
        puts: vec![late.clone()],
        deletes: vec![],
    };
    bed.stop_cell(2);
    uncommit(&bed, 2, &stage);
    bed.start_cell(2);

    let fresh = bed.cluster();
    let (loaded, mut objects) = fresh.load_objects().expect("rolled forward");
    objects.sort_by(|a, b| a.id.cmp(&b.id));
    let mut want = vec![kept, late];
    want.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!((loaded, objects), (hash, want));
    assert_eq!(
        fresh.reconcile_objects().unwrap(),
        0,
        "nothing left to roll"
    );
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A staged transaction's stored form on a cell (its request and when the cell staged it).
fn staged_content(stage: &StageRequest, staged_at: u64) -> String {
    serde_json::json!({ "staged_at": staged_at, "request": stage }).to_string()
}

#[test]
fn a_write_no_cell_committed_stays_invisible_until_abandoned() {
    let mut bed = Testbed::start(TestbedOptions::default());
    let cluster = bed.cluster();
    let kept = object(b"kept");
    let hash = cluster.write_objects(vec![kept.clone()], vec![]).unwrap();
    let ghost = object(b"ghost");
    let stage = StageRequest {
        txid: last_txid(&bed, 0),
        puts: vec![ghost],
        deletes: vec![],
    };
    // Every cell staged the ghost just now and none committed it (its writer died between
    // stage and commit).
    let ghost_txid = keyfrag_core::random::uid_hex().unwrap();
    let set_ghost = |bed: &mut Testbed, staged_at: u64| {
        for i in 0..3 {
            bed.stop_cell(i);
            let db = rusqlite::Connection::open(bed.cell_database(i)).unwrap();
            db.execute(
                "INSERT OR REPLACE INTO staged_tx (token_id, txid, content_hash, content)
                 SELECT token_id, ?1, x'00', ?2 FROM tokens",
                rusqlite::params![ghost_txid, staged_content(&stage, staged_at)],
            )
            .unwrap();
            bed.start_cell(i);
        }
    };
    set_ghost(&mut bed, now_secs());
    let fresh = bed.cluster();
    assert_eq!(
        fresh.reconcile_objects().unwrap(),
        0,
        "a fresh write is left alone"
    );
    assert_eq!(
        fresh.load_objects().unwrap(),
        (hash.clone(), vec![kept.clone()])
    );
    // The ghost's object cannot be written while it may still commit.
    let ghost_object = stage.puts[0].clone();
    assert!(
        fresh
            .write_objects(vec![ghost_object.clone()], vec![])
            .is_err()
    );

    // Staged long ago on every cell: abandoned, aborted everywhere, its object free again.
    set_ghost(&mut bed, now_secs() - 1000);
    let fresh = bed.cluster();
    assert_eq!(fresh.load_objects().unwrap(), (hash, vec![kept]));
    fresh.write_objects(vec![ghost_object], vec![]).unwrap();
    assert_eq!(fresh.reconcile_objects().unwrap(), 0);
}
