//! Crash safety (issue 8, item 5): cells run as real processes and one is killed with SIGKILL
//! at random moments while others write objects, import keys and delete objects. After each
//! restart: every acknowledged write is there, every acknowledged deletion stays deleted, the
//! cells agree on one view (writes caught between commits roll forward), and every
//! acknowledged key still signs.
//!
//! Needs the `keyfrag-server` binary beside the test's target directory (`cargo build --bins`,
//! which the test command runs first).

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};

use getrandom::SysRng;
use getrandom::rand_core::UnwrapErr;
use keyfrag_cli::provision::{ProvisionOptions, free_loopback_addrs, provision};
use keyfrag_cli::testbed::server_binary;
use keyfrag_client::{Attr, Cluster, Config, ObjectRecord, UserKind};
use keyfrag_core::rsa_combine::{blind, combine};
use keyfrag_core::rsa_public::RsaPublic;
use keyfrag_core::rsa_share::split_exponent;
use rsa::traits::{PrivateKeyParts, PublicKeyParts};

const CELLS: usize = 3;
const ROUNDS: usize = 4;
const WRITERS: usize = 3;

/// A cell process; started again on the same config (same port, same store) after a kill.
struct CellProcess {
    config: PathBuf,
    child: Option<Child>,
}

impl CellProcess {
    fn start(&mut self) {
        let mut child = Command::new(server_binary())
            .args(["run", "--config"])
            .arg(&self.config)
            .env("KEYFRAG_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // The cell prints its listening line once it accepts connections.
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(line.contains("listening"), "cell did not start: {line:?}");
        self.child = Some(child);
    }

    fn kill(&mut self) {
        let mut child = self.child.take().unwrap();
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
    }
}

impl Drop for CellProcess {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// What the cells acknowledged, by the workers.
#[derive(Default)]
struct Acked {
    objects: Mutex<BTreeSet<String>>,
    deleted: Mutex<BTreeSet<String>>,
    keys: Mutex<Vec<(String, RsaPublic)>>,
}

/// Acknowledged operations so far, to kill a cell while writes are under way (a condition to
/// wait on, not a sleep).
#[derive(Default)]
struct Progress {
    done: Mutex<usize>,
    changed: Condvar,
}

impl Progress {
    fn bump(&self) {
        *self.done.lock().unwrap() += 1;
        self.changed.notify_all();
    }

    fn wait_for_more(&self, n: usize) {
        let mut done = self.done.lock().unwrap();
        let target = *done + n;
        while *done < target {
            done = self.changed.wait(done).unwrap();
        }
    }
}

fn object(key_uid: Option<&str>) -> ObjectRecord {
    ObjectRecord {
        id: keyfrag_core::random::uid_hex().unwrap(),
        key_uid: key_uid.map(str::to_owned),
        attrs: vec![Attr {
            kind: 3,
            value: b"crash".to_vec(),
        }],
    }
}

fn signs(cluster: &Cluster, uid: &str, public: &RsaPublic) -> bool {
    let mut x = vec![0x42u8; public.size()];
    x[0] = 0;
    let blinded = blind(public, &x).unwrap();
    let Ok(partials) = cluster.rsa_partials(uid, &blinded.input) else {
        return false;
    };
    combine(public, &blinded, &partials).is_ok()
}

/// Whether the write was acknowledged; refusals are printed (shown when the test fails).
fn report<T>(r: keyfrag_client::Result<T>) -> bool {
    match r {
        Ok(_) => true,
        Err(e) => {
            println!("refused: {}", e.message);
            false
        }
    }
}

fn random_below(n: usize) -> usize {
    let mut b = [0u8; 4];
    getrandom::fill(&mut b).unwrap();
    u32::from_le_bytes(b) as usize % n
}

#[test]
fn killing_a_cell_during_writes_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let provisioned = provision(
        dir.path(),
        &ProvisionOptions {
            label: "crash".into(),
            addrs: free_loopback_addrs(CELLS).unwrap(),
            allow_raw_rsa: false,
            allow_rsa_1024: true,
        },
    )
    .unwrap();
    let mut cells: Vec<CellProcess> = provisioned
        .cell_configs
        .iter()
        .map(|c| CellProcess {
            config: c.clone(),
            child: None,
        })
        .collect();
    cells.iter_mut().for_each(CellProcess::start);
    let mut token = Config::load(&provisioned.client_config)
        .unwrap()
        .tokens
        .remove(0);
    token.timeout_ms = 5000;
    let admin = Cluster::new(&token).unwrap();
    admin.init_token("12345678", "crash").unwrap();
    admin.login(UserKind::So, "12345678").unwrap();
    admin.init_pin("1234").unwrap();
    admin.logout();

    // Keys are made once (1024-bit: generation is the slow part) and imported under new uids.
    let keys: Vec<rsa::PrivateKey> = (0..2)
        .map(|_| rsa::PrivateKey::new(&mut UnwrapErr(SysRng), 1024).unwrap())
        .collect();
    let acked = Acked::default();
    let progress = Progress::default();
    let mut attempts = 0usize;

    for round in 0..ROUNDS {
        let stop = AtomicBool::new(false);
        let failures = Progress::default();
        let victim = random_below(CELLS);
        std::thread::scope(|s| {
            for w in 0..WRITERS {
                let (acked, progress, stop, failures, token, keys) =
                    (&acked, &progress, &stop, &failures, &token, &keys);
                s.spawn(move || {
                    let cluster = Cluster::new(token).unwrap();
                    // A connection the restarted cell's predecessor left half-open can fail one
                    // login (logins are never retried by the client): a few attempts.
                    let logged_in = (0..3).any(|_| cluster.login(UserKind::User, "1234").is_ok());
                    assert!(logged_in, "round {round}: no login");
                    let mut n = 0usize;
                    while !stop.load(Ordering::SeqCst) {
                        n += 1;
                        let ok = match (w, n % 3) {
                            // Writer 0 imports keys (shares, then the object naming them).
                            (0, _) => {
                                let key = &keys[n % keys.len()];
                                let ne = (
                                    key.n().to_be_bytes_trimmed_vartime(),
                                    key.e().to_be_bytes_trimmed_vartime(),
                                );
                                let public = RsaPublic::new(&ne.0, &ne.1).unwrap();
                                let d = key.d().to_be_bytes_trimmed_vartime();
                                let shares = split_exponent(&d, public.bits(), CELLS).unwrap();
                                let uid = keyfrag_core::random::uid_hex().unwrap();
                                let stored = report(
                                    cluster
                                        .put_rsa_key(&uid, &ne.0, &ne.1, shares, None)
                                        .and_then(|()| {
                                            cluster.write_objects(vec![object(Some(&uid))], vec![])
                                        }),
                                );
                                if stored {
                                    acked.keys.lock().unwrap().push((uid, public));
                                }
                                stored
                            }
                            // The others write objects, and every third step delete one.
                            (_, 0) => {
                                let victim = acked.objects.lock().unwrap().iter().next().cloned();
                                match victim {
                                    Some(id) => {
                                        let done =
                                            report(cluster.write_objects(vec![], vec![id.clone()]));
                                        // Refused or not, the object is no longer owed: a
                                        // deletion some cell committed before the crash rolls
                                        // forward (it was not acknowledged, so either outcome
                                        // is right). An acknowledged one must stay deleted.
                                        acked.objects.lock().unwrap().remove(&id);
                                        if done {
                                            acked.deleted.lock().unwrap().insert(id);
                                        }
                                        done
                                    }
                                    None => true,
                                }
                            }
                            _ => {
                                let o = object(None);
                                let done = report(cluster.write_objects(vec![o.clone()], vec![]));
                                if done {
                                    acked.objects.lock().unwrap().insert(o.id);
                                }
                                done
                            }
                        };
                        if ok {
                            progress.bump();
                        } else {
                            failures.bump();
                        }
                    }
                });
            }
            // Kill the victim after a random amount of acknowledged work, let the workers
            // run into its absence, restart it, let them run again, stop.
            progress.wait_for_more(5 + random_below(40));
            cells[victim].kill();
            failures.wait_for_more(WRITERS);
            cells[victim].start();
            progress.wait_for_more(10);
            stop.store(true, Ordering::SeqCst);
        });
        attempts += *failures.done.lock().unwrap();

        // After the restart: one agreed view holding every acknowledged write.
        let check = Cluster::new(&token).unwrap();
        check.login(UserKind::User, "1234").unwrap();
        let (_, objects) = check
            .load_objects()
            .unwrap_or_else(|e| panic!("round {round}: cells disagree: {}", e.message));
        let present: BTreeSet<String> = objects.iter().map(|o| o.id.clone()).collect();
        for id in acked.objects.lock().unwrap().iter() {
            assert!(
                present.contains(id),
                "round {round}: acknowledged object {id} lost"
            );
        }
        for id in acked.deleted.lock().unwrap().iter() {
            assert!(
                !present.contains(id),
                "round {round}: deleted object {id} is back"
            );
        }
        for (uid, public) in acked.keys.lock().unwrap().iter() {
            assert!(
                signs(&check, uid, public),
                "round {round}: key {uid} no longer signs"
            );
        }
    }
    println!(
        "{ROUNDS} SIGKILLs; acknowledged: {} objects kept, {} deleted, {} keys; {attempts} writes refused while a cell was down",
        acked.objects.lock().unwrap().len(),
        acked.deleted.lock().unwrap().len(),
        acked.keys.lock().unwrap().len()
    );
}
