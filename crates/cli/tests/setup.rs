//! Operator set-up end to end: `keyfrag-server init` on three cells, `keyfrag cluster create`
//! over their cards, cells started on the result, and the operator's admin client reaching
//! each one through its own TLS pin. Bad input (a wrong fingerprint, an edited card, a
//! refused prompt, another cluster in the same directory) writes nothing.

use std::path::{Path, PathBuf};

use keyfrag_cli::cluster_create::{Confirm, create};
use keyfrag_cli::provision::free_loopback_addrs;
use keyfrag_cli::testbed::server_binary;
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

/// Three initialised cells, their cluster created and every cell running.
struct Running {
    cells: Cells,
    out: PathBuf,
    runtime: tokio::runtime::Runtime,
    running: Vec<Option<keyfrag_server::RunningCell>>,
}

impl Running {
    fn start() -> Running {
        let cells = three_cells();
        let out = cells.root.join("ops");
        create(&cells.cards, Confirm::Given(&cells.fingerprints), &out).unwrap();
        let cluster = std::fs::read_to_string(out.join("cluster.toml")).unwrap();
        let mut bed = Running {
            cells,
            out,
            runtime: tokio::runtime::Runtime::new().unwrap(),
            running: Vec::new(),
        };
        for i in 0..3 {
            let dir = bed.cell_dir(i);
            std::fs::write(dir.join("cluster.toml"), &cluster).unwrap();
            bed.running.push(None);
            bed.start_cell(i);
        }
        bed
    }

    fn cell_dir(&self, i: usize) -> PathBuf {
        self.cells.cards[i].parent().unwrap().to_path_buf()
    }

    fn start_cell(&mut self, i: usize) {
        let config = keyfrag_server::CellConfig::load(&self.cell_dir(i).join("cell.toml")).unwrap();
        self.running[i] = Some(
            self.runtime
                .block_on(keyfrag_server::start(config))
                .unwrap(),
        );
    }

    fn stop_cell(&mut self, i: usize) {
        if let Some(c) = self.running[i].take() {
            self.runtime.block_on(c.shutdown());
        }
    }

    fn admin(&self) -> PathBuf {
        self.out.join("admin.toml")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        for i in 0..self.running.len() {
            self.stop_cell(i);
        }
    }
}

#[test]
fn tokens_and_access_keys_on_every_cell_or_none() {
    use keyfrag_cli::operator::{
        access_key_issue, access_key_list, access_key_revoke, token_create,
    };
    use keyfrag_client::{Cluster, Config, ErrorKind, UserKind};
    let mut bed = Running::start();
    let admin = bed.admin();

    // A cell down: the token is created nowhere (the others undo theirs).
    bed.stop_cell(2);
    let e = token_create(&admin, "prod", "so-pin-1234").unwrap_err();
    assert!(
        e.contains("cell-2") && e.contains("removed again from cell-0, cell-1"),
        "{e}"
    );
    bed.start_cell(2);
    let e = access_key_issue(&admin, "prod", Some("app")).unwrap_err();
    assert!(
        e.contains("cell-0") && e.contains("no token \"prod\""),
        "{e}"
    );
    assert!(!bed.out.join("access-keys").exists());
    assert!(!bed.out.join("keyfrag.toml").exists());
    let e = token_create(&admin, "prod", "12").unwrap_err();
    assert!(e.contains("nothing was created"), "{e}");

    let out = token_create(&admin, "prod", "so-pin-1234").unwrap();
    assert!(out.contains("created on cell-0, cell-1, cell-2"), "{out}");
    let out = token_create(&admin, "prod", "so-pin-1234").unwrap();
    assert!(out.contains("unchanged"), "{out}");

    let out = access_key_issue(&admin, "prod", Some("app")).unwrap();
    assert!(out.contains("issued on cell-0, cell-1, cell-2"), "{out}");
    let key_file = bed.out.join("access-keys/prod/app/cell-1.key");
    let key = std::fs::read_to_string(&key_file).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // Retried: same keys, nothing new.
    access_key_issue(&admin, "prod", Some("app")).unwrap();
    assert_eq!(std::fs::read_to_string(&key_file).unwrap(), key);

    // The module config now names the token; its SO PIN was set on every cell.
    let config = Config::load(&bed.out.join("keyfrag.toml")).unwrap();
    let token = config.tokens.iter().find(|t| t.label == "prod").unwrap();
    let cluster = Cluster::new(token).unwrap();
    let status = cluster.token_status().unwrap();
    assert!(status.initialized && status.label == "prod");
    let e = cluster.login(UserKind::So, "wrong-pin").unwrap_err();
    assert_eq!(e.kind, ErrorKind::PinIncorrect, "{}", e.message);
    cluster.login(UserKind::So, "so-pin-1234").unwrap();
    cluster.init_pin("user-pin").unwrap();
    cluster.logout();

    let listed = access_key_list(&admin, "prod").unwrap();
    let line = listed.lines().find(|l| l.starts_with("app ")).unwrap();
    assert!(
        line.ends_with("active") && !line.contains("never"),
        "{listed}"
    );

    let e = access_key_revoke(&admin, "prod", "nope").unwrap_err();
    assert!(e.contains("no access key named \"nope\""), "{e}");
    let out = access_key_revoke(&admin, "prod", "app").unwrap();
    assert!(out.contains("revoked on cell-0, cell-1, cell-2"), "{out}");
    // Refused at once by every cell, with no cache to wait for.
    for cell in &token.cells {
        let mut one = token.clone();
        one.cells = vec![cell.clone(), cell.clone()];
        let e = Cluster::new(&one).unwrap().token_status().unwrap_err();
        assert!(
            e.message.contains(&cell.name) && e.message.contains("access key"),
            "{}",
            e.message
        );
    }
    let listed = access_key_list(&admin, "prod").unwrap();
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with("app ") && l.ends_with("revoked")),
        "{listed}"
    );
    let e = access_key_issue(&admin, "prod", Some("app")).unwrap_err();
    assert!(e.contains("names are never reused"), "{e}");
    let e = access_key_list(&admin, "other").unwrap_err();
    assert!(e.contains("no token \"other\""), "{e}");
}

#[test]
fn master_keys_rotate_on_every_cell_while_keys_keep_signing() {
    use keyfrag_cli::operator::{access_key_issue, rotate_master_keys, token_create};
    use keyfrag_client::{Cluster, Config, UserKind};
    use keyfrag_core::rsa_combine::{blind, combine};
    use keyfrag_core::rsa_public::RsaPublic;
    use keyfrag_core::rsa_share::split_exponent;
    use rsa::traits::{PrivateKeyParts, PublicKeyParts};

    let mut bed = Running::start();
    let admin = bed.admin();
    token_create(&admin, "prod", "so-pin-1234").unwrap();
    access_key_issue(&admin, "prod", Some("app")).unwrap();
    let config = Config::load(&bed.out.join("keyfrag.toml")).unwrap();
    let cluster = Cluster::new(&config.tokens[0]).unwrap();
    cluster.login(UserKind::So, "so-pin-1234").unwrap();
    cluster.init_pin("user-pin").unwrap();
    cluster.logout();
    cluster.login(UserKind::User, "user-pin").unwrap();

    let key = rsa::PrivateKey::new(
        &mut getrandom::rand_core::UnwrapErr(getrandom::SysRng),
        1024,
    )
    .unwrap();
    let n = key.n().to_be_bytes_trimmed_vartime();
    let e = key.e().to_be_bytes_trimmed_vartime();
    let public = RsaPublic::new(&n, &e).unwrap();
    let shares = split_exponent(&key.d().to_be_bytes_trimmed_vartime(), public.bits(), 3).unwrap();
    let uid = keyfrag_core::random::uid_hex().unwrap();
    cluster.put_rsa_key(&uid, &n, &e, shares, None).unwrap();
    let sign = || {
        let blinded = blind(&public, &[0x42; 64]).unwrap();
        let partials = cluster.rsa_partials(&uid, &blinded.input).unwrap();
        combine(&public, &blinded, &partials)
            .expect("combined result verifies")
            .expose()
            .to_vec()
    };
    let before = sign();

    let e = rotate_master_keys(&admin, Some("cell-9")).unwrap_err();
    assert!(e.contains("no cell \"cell-9\""), "{e}");
    let out = rotate_master_keys(&admin, None).unwrap();
    assert_eq!(out.lines().count(), 3, "{out}");
    assert!(
        out.contains("cell-2: master key") && out.contains("(1 re-sealed)"),
        "{out}"
    );
    assert_eq!(sign(), before);
    let retired = |dir: &Path| {
        std::fs::read_dir(dir)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with("master.key.retired-")
            })
            .count()
    };
    for i in 0..3 {
        assert_eq!(retired(&bed.cell_dir(i)), 1);
    }

    // On the cell's own host, with the files `keyfrag-server init` left there: the running
    // cell rotates again (the other cells serve on, and the key still signs).
    let dir = bed.cell_dir(0);
    let rotate_here = || {
        std::process::Command::new(server_binary())
            .arg("rotate-master-key")
            .arg("--dir")
            .arg(&dir)
            .output()
            .unwrap()
    };
    let done = rotate_here();
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert!(done.status.success(), "{stderr}");
    let id = keyfrag_server::sealing::MasterKey::load(&dir.join("master.key"))
        .unwrap()
        .current_id();
    assert_eq!(
        String::from_utf8(done.stdout).unwrap(),
        format!("cell-0: master key {id} now seals every share (1 re-sealed)\n")
    );
    assert_eq!(retired(&dir), 2);
    assert_eq!(sign(), before);

    // The cell stopped: a clear error, and its files stay as they were.
    bed.stop_cell(0);
    let failed = rotate_here();
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(!failed.status.success());
    assert!(
        stderr.contains("cell cell-0 is not running: nothing listens at https://127.0.0.1:")
            && stderr.contains("keyfrag-server run --config"),
        "{stderr}"
    );
    assert_eq!(retired(&dir), 2);
    assert_eq!(
        keyfrag_server::sealing::MasterKey::load(&dir.join("master.key"))
            .unwrap()
            .current_id(),
        id
    );
}
