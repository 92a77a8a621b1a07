//! Operator set-up end to end: `keyfrag-server init` on three cells, `keyfrag cluster create`
//! over their cards, cells started on the result, and the operator's admin client reaching
//! each one through its own TLS pin. Bad input (a wrong fingerprint, an edited card, a
//! refused prompt, another cluster in the same directory) writes nothing.

use std::path::{Path, PathBuf};

use keyfrag_cli::cluster_create::{Confirm, create};
use keyfrag_cli::provision::free_loopback_addrs;
use keyfrag_client::admin::AdminFile;
use keyfrag_proto::info::InfoResponse;
use keyfrag_server::card::CellCard;
use keyfrag_server::init::{InitOptions, init};

struct Cells {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    cards: Vec<PathBuf>,
    fingerprints: Vec<String>,
}

fn three_cells() -> Cells {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    let mut cards = Vec::new();
    let mut fingerprints = Vec::new();
    for (i, addr) in free_loopback_addrs(3).unwrap().into_iter().enumerate() {
        let dir = root.join(format!("cell-{i}"));
        let done = init(
            &dir,
            &InitOptions {
                url: Some(format!("https://{addr}")),
                ..Default::default()
            },
        )
        .unwrap();
        cards.push(dir.join("card.toml"));
        fingerprints.push(done.card.fingerprint);
    }
    Cells {
        _tmp: tmp,
        root,
        cards,
        fingerprints,
    }
}

fn files_under(dir: &Path) -> usize {
    std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

#[test]
fn a_wrong_fingerprint_or_an_edited_card_writes_nothing() {
    let cells = three_cells();
    let out = cells.root.join("ops");
    let mut prints = cells.fingerprints.clone();
    prints[1] = cells.fingerprints[0].clone();
    let e = create(&cells.cards, Confirm::Given(&prints), &out)
        .err()
        .unwrap();
    assert!(e.contains("cell-1") && e.contains("does not match"), "{e}");
    assert_eq!(files_under(&out), 0);

    let e = create(&cells.cards, Confirm::Given(&prints[..2]), &out)
        .err()
        .unwrap();
    assert!(e.contains("2 fingerprints given for 3 cards"), "{e}");

    let mut input: &[u8] = b"yes\nno\n";
    let mut prompts = Vec::new();
    let e = create(
        &cells.cards,
        Confirm::Ask {
            input: &mut input,
            prompts: &mut prompts,
        },
        &out,
    )
    .err()
    .unwrap();
    assert!(e.contains("cell-1") && e.contains("not accepted"), "{e}");
    let shown = String::from_utf8(prompts).unwrap();
    assert!(shown.contains(&cells.fingerprints[1]), "{shown}");
    assert_eq!(files_under(&out), 0);

    // A card re-pointed at another address, its fingerprint left as it was.
    let edited = cells.root.join("edited.toml");
    let text = std::fs::read_to_string(&cells.cards[2]).unwrap();
    let card = CellCard::parse(&text).unwrap();
    std::fs::write(&edited, text.replace(&card.url, "https://203.0.113.9:7443")).unwrap();
    let cards = [cells.cards[0].clone(), cells.cards[1].clone(), edited];
    let e = create(&cards, Confirm::Given(&cells.fingerprints), &out)
        .err()
        .unwrap();
    assert!(e.contains("edited.toml") && e.contains("corrupted"), "{e}");
    assert_eq!(files_under(&out), 0);

    let twice = [cells.cards[0].clone(), cells.cards[0].clone()];
    let e = create(&twice, Confirm::Given(&cells.fingerprints[..2]), &out)
        .err()
        .unwrap();
    assert!(e.contains("same name"), "{e}");
}

#[test]
fn cluster_create_is_idempotent_and_its_files_run_the_cells() {
    let cells = three_cells();
    let out = cells.root.join("ops");
    let done = create(&cells.cards, Confirm::Given(&cells.fingerprints), &out).unwrap();
    assert!(done.changed && done.missing_operator_keys.is_empty());
    assert_eq!(done.cells, ["cell-0", "cell-1", "cell-2"]);
    let cluster = std::fs::read_to_string(out.join("cluster.toml")).unwrap();
    let mut input: &[u8] = b"yes\nyes\nyes\n";
    let mut prompts = Vec::new();
    let again = create(
        &cells.cards,
        Confirm::Ask {
            input: &mut input,
            prompts: &mut prompts,
        },
        &out,
    )
    .unwrap();
    assert!(!again.changed);
    let e = create(
        &cells.cards[..2],
        Confirm::Given(&cells.fingerprints[..2]),
        &out,
    )
    .err()
    .unwrap();
    assert!(e.contains("another cluster"), "{e}");
    assert_eq!(
        std::fs::read_to_string(out.join("cluster.toml")).unwrap(),
        cluster
    );

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut running = Vec::new();
    for card in &cells.cards {
        let dir = card.parent().unwrap();
        std::fs::write(dir.join("cluster.toml"), &cluster).unwrap();
        let config = keyfrag_server::CellConfig::load(&dir.join("cell.toml")).unwrap();
        running.push(runtime.block_on(keyfrag_server::start(config)).unwrap());
    }
    let admin = AdminFile::load(&out.join("admin.toml")).unwrap();
    for (client, name) in admin.clients().unwrap().iter().zip(&done.cells) {
        let info: InfoResponse = client.get_json("info").unwrap();
        assert_eq!(&info.cell, name);
    }
    // Each cell is pinned to its own CA: another cell's CA does not open it.
    let mut crossed = admin.cells[0].clone();
    crossed.ca = admin.cells[1].ca.clone();
    let client = keyfrag_client::admin::AdminClient::new(&crossed).unwrap();
    let e = client.get_json::<InfoResponse>("info").unwrap_err();
    assert!(e.message.contains("cell-0"), "{}", e.message);
    for cell in running {
        runtime.block_on(cell.shutdown());
    }
}
