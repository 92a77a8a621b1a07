//! Faults between the module and one cell (issue 8, item 6): the cell hangs past the timeout,
//! answers garbage, closes connections, serves a TLS certificate the module does not trust,
//! or returns a wrong partial. Each gives CKR_DEVICE_ERROR within a bounded time and never a
//! wrong result; the message names the cell where the cell can be known; the module recovers
//! when the cell does.
#![allow(clippy::macro_metavars_in_unsafe)] // `call!` wraps calls through the C function list

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use common::*;
use cryptoki_sys::*;
use keyfrag_cli::testbed::{Testbed, TestbedOptions};
use keyfrag_client::{Cluster, Config};
use keyfrag_core::rsa_share::RsaShare;
use keyfrag_core::secret::SecretBytes;
use keyfrag_server::sealing::MasterKey;
use rsa::Pkcs1v15Sign;
use rsa::sha2::{Digest, Sha256};

const PASS: u8 = 0;
/// Read requests and never answer.
const HANG: u8 = 1;
/// Answer anything with bytes that are not TLS.
const GARBAGE: u8 = 2;
/// Close every connection at once.
const CLOSE: u8 = 3;

/// A TCP relay in front of one cell whose behaviour a test switches at any time; it applies
/// to connections already open (the module keeps its connections alive) as well as new ones.
struct FaultProxy {
    addr: SocketAddr,
    mode: Arc<AtomicU8>,
}

impl FaultProxy {
    fn start(target: SocketAddr) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mode = Arc::new(AtomicU8::new(PASS));
        let m = mode.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let m = m.clone();
                std::thread::spawn(move || relay(client, target, m));
            }
        });
        FaultProxy { addr, mode }
    }

    fn set(&self, mode: u8) {
        self.mode.store(mode, Ordering::SeqCst);
    }
}

fn relay(mut client: TcpStream, target: SocketAddr, mode: Arc<AtomicU8>) {
    let Ok(mut server) = TcpStream::connect(target) else {
        return;
    };
    let (mut from_server, mut to_client) =
        (server.try_clone().unwrap(), client.try_clone().unwrap());
    let back_mode = mode.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 16384];
        while let Ok(n) = from_server.read(&mut buf) {
            if n == 0 || back_mode.load(Ordering::SeqCst) != PASS {
                break;
            }
            if to_client.write_all(&buf[..n]).is_err() {
                break;
            }
        }
    });
    let mut buf = [0u8; 16384];
    while let Ok(n) = client.read(&mut buf) {
        if n == 0 {
            break;
        }
        match mode.load(Ordering::SeqCst) {
            PASS => {
                if server.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            HANG => {} // swallow, never answer
            GARBAGE => {
                let _ = client.write_all(b"HTTP/1.1 200 OK\r\n\r\nthis is not a partial");
                break;
            }
            _ => break,
        }
    }
    let _ = client.shutdown(Shutdown::Both);
    let _ = server.shutdown(Shutdown::Both);
}

/// A testbed whose module config reaches cell 0 through a fault proxy, with a short timeout.
struct ProxiedBed {
    _bed: Testbed,
    proxy: FaultProxy,
    config: std::path::PathBuf,
    _guard: std::sync::MutexGuard<'static, ()>,
}

impl ProxiedBed {
    fn new() -> ProxiedBed {
        let guard = serial();
        let bed = Testbed::start(TestbedOptions::default());
        let mut config = Config::load(&bed.config_path).unwrap();
        let cell0: SocketAddr = config.tokens[0].cells[0]
            .url
            .trim_start_matches("https://")
            .parse()
            .unwrap();
        let proxy = FaultProxy::start(cell0);
        config.tokens[0].cells[0].url = format!("https://{}", proxy.addr);
        config.tokens[0].timeout_ms = 2000;
        let path = bed.dir.path().join("proxied.toml");
        std::fs::write(&path, toml::to_string(&config).unwrap()).unwrap();
        assert_eq!(initialize(&path, CKF_OS_LOCKING_OK), CKR_OK);
        ProxiedBed {
            _bed: bed,
            proxy,
            config: path,
            _guard: guard,
        }
    }

    fn cluster(&self) -> Cluster {
        Cluster::new(&Config::load(&self.config).unwrap().tokens[0]).unwrap()
    }
}

impl Drop for ProxiedBed {
    fn drop(&mut self) {
        let _ = call!(C_Finalize, std::ptr::null_mut());
    }
}

fn signs(h: CK_SESSION_HANDLE, key: CK_OBJECT_HANDLE) -> Result<(), CK_RV> {
    let msg = b"through a faulty wire";
    let sig = sign(h, &mut mech(CKM_SHA256_RSA_PKCS), key, msg)?;
    rsa_key()
        .to_public_key()
        .verify(Pkcs1v15Sign::new::<Sha256>(), &Sha256::digest(msg), &sig)
        .expect("a signature that does not verify");
    Ok(())
}

/// The refusal comes well within the configured bounds (2 s per attempt, one retry for
/// idempotent requests): a generous ceiling, to catch a hang, not to measure speed.
const BOUND: Duration = Duration::from_secs(12);

#[test]
fn a_hung_garbled_or_closing_cell_fails_fast_and_the_module_recovers() {
    let f = ProxiedBed::new();
    let h = open_session(true);
    assert_eq!(login(h, CKU_USER, USER_PIN), CKR_OK);
    let (key, _) = import_rsa(h, rsa_key(), true, b"wire");
    signs(h, key).unwrap();

    for (mode, name) in [(HANG, "hung"), (GARBAGE, "garbage"), (CLOSE, "closing")] {
        f.proxy.set(mode);
        let started = Instant::now();
        assert_eq!(signs(h, key), Err(CKR_DEVICE_ERROR), "{name} cell");
        assert!(
            started.elapsed() < BOUND,
            "{name} cell: refusal took {:?}",
            started.elapsed()
        );
        // The client's error names the cell.
        let cluster = f.cluster();
        let err = cluster
            .login(keyfrag_client::UserKind::User, USER_PIN)
            .unwrap_err();
        assert!(err.message.contains("cell-a"), "{name}: {}", err.message);
        f.proxy.set(PASS);
        signs(h, key).unwrap_or_else(|rv| panic!("no recovery after a {name} cell: {rv:#x}"));
    }
}

#[test]
fn a_cell_behind_a_certificate_the_module_does_not_trust_is_refused() {
    let _g = serial();
    let bed = Testbed::start(TestbedOptions::default());
    let stranger = Testbed::start(TestbedOptions::default());
    let mut config = Config::load(&bed.config_path).unwrap();
    // Cell 0 is trusted only under another cluster's CA: its real certificate fails the pin.
    config.tokens[0].cells[0].ca = stranger.provisioned.ca_cert.clone();
    let cluster = Cluster::new(&config.tokens[0]).unwrap();
    let started = Instant::now();
    let err = cluster
        .login(keyfrag_client::UserKind::User, USER_PIN)
        .unwrap_err();
    assert!(started.elapsed() < BOUND);
    assert!(err.message.contains("cell-a"), "{}", err.message);
    let path = bed.dir.path().join("untrusted.toml");
    std::fs::write(&path, toml::to_string(&config).unwrap()).unwrap();
    assert_eq!(initialize(&path, CKF_OS_LOCKING_OK), CKR_OK);
    let h = open_session(true);
    assert_eq!(login(h, CKU_USER, USER_PIN), CKR_DEVICE_ERROR);
    assert_eq!(call!(C_Finalize, std::ptr::null_mut()), CKR_OK);
}

#[test]
fn a_wrong_partial_never_becomes_a_result() {
    let f = Fixture::new();
    let h = open_session(true);
    assert_eq!(login(h, CKU_USER, USER_PIN), CKR_OK);
    let (key, _) = import_rsa(h, rsa_key(), true, b"wrong");
    signs(h, key).unwrap();

    // Cell 1's share, changed by one in its last byte and sealed again with the cell's own
    // master key: the cell computes a well-formed but wrong partial.
    let cell = keyfrag_server::CellConfig::load(&f.bed.provisioned.cell_configs[1]).unwrap();
    let master = MasterKey::load(&cell.master_key_file).unwrap();
    let db = rusqlite::Connection::open(f.bed.cell_database(1)).unwrap();
    let (token, uid, epoch, format, sealed): (String, String, i64, i64, Vec<u8>) = db
        .query_row(
            "SELECT token_id, uid, epoch, format, sealed_share FROM shares WHERE pending = 0",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .unwrap();
    let share = master
        .open_share(&token, &uid, epoch as u64, format as u32, &sealed)
        .unwrap();
    let mut magnitude = share.magnitude.expose().to_vec();
    *magnitude.last_mut().unwrap() ^= 1;
    let wrong = RsaShare {
        negative: share.negative,
        magnitude: SecretBytes::new(magnitude),
    };
    let resealed = master
        .seal_share(&token, &uid, epoch as u64, &wrong)
        .unwrap();
    db.execute(
        "UPDATE shares SET sealed_share = ?1 WHERE uid = ?2",
        rusqlite::params![resealed, uid],
    )
    .unwrap();
    assert_eq!(signs(h, key), Err(CKR_DEVICE_ERROR));
    // Decryption refuses the same way rather than return a wrong plaintext.
    let ct = rsa_key()
        .to_public_key()
        .encrypt(&mut getrandom::SysRng, rsa::Pkcs1v15Encrypt, b"secret")
        .unwrap();
    assert_eq!(
        decrypt(h, &mut mech(CKM_RSA_PKCS), key, &ct),
        Err(CKR_DEVICE_ERROR)
    );

    // The true share back: the key works again.
    db.execute(
        "UPDATE shares SET sealed_share = ?1 WHERE uid = ?2",
        rusqlite::params![sealed, uid],
    )
    .unwrap();
    signs(h, key).unwrap();
}
