//! Admin calls a cell's own host makes to the running cell (`keyfrag-server rotate-master-key
//! --dir DIR`), with the files `keyfrag-server init` left in DIR: the card (name, URL), the
//! TLS CA to pin and the operator key. The running process does the work through its admin
//! route, so the cell keeps serving; nothing here opens the store or the master key itself.

use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;
use std::time::Duration;

use keyfrag_client::admin::{AdminCell, AdminClient};
use keyfrag_proto::admin::RotateResponse;

use crate::card::CellCard;
use crate::init::{CARD_FILE, CONFIG_FILE, OPERATOR_KEY_FILE, TLS_CA_FILE};

/// The cell's name and what its rotation reported.
pub struct Rotated {
    pub name: String,
    pub response: RotateResponse,
}

/// Ask the cell set up in `dir` to re-seal every share under a new master key.
pub fn rotate_master_key(dir: &Path) -> Result<Rotated, String> {
    let (card, client) = connect(dir)?;
    match client.post_json::<_, RotateResponse>("master-key/rotate", &()) {
        Ok(response) => Ok(Rotated {
            name: card.name,
            response,
        }),
        Err(_) if nothing_listens(&card.url) => Err(format!(
            "cell {} is not running: nothing listens at {} (start it with `keyfrag-server run \
             --config {}`; the rotation runs inside the running cell); nothing was changed",
            card.name,
            card.url,
            dir.join(CONFIG_FILE).display()
        )),
        Err(e) => Err(format!("{}; rerun to resume the rotation", e.message)),
    }
}

fn connect(dir: &Path) -> Result<(CellCard, AdminClient), String> {
    let card = CellCard::load(&dir.join(CARD_FILE)).map_err(|e| {
        format!(
            "{e} (is {} a directory made by `keyfrag-server init`?)",
            dir.display()
        )
    })?;
    let key = dir.join(OPERATOR_KEY_FILE);
    if !key.exists() {
        return Err(format!(
            "{} is missing (moved to the operator's machine?): rotate from there with \
             `keyfrag cell rotate-master-key --cluster DIR --cell {}`",
            key.display(),
            card.name
        ));
    }
    let cell = AdminCell {
        name: card.name.clone(),
        url: card.url.clone(),
        ca: dir.join(TLS_CA_FILE),
        operator_key_file: key,
        fingerprint: card.fingerprint.clone(),
    };
    let client = AdminClient::new(&cell).map_err(|e| e.message)?;
    Ok((card, client))
}

/// True when a TCP connection to the URL's address is refused or times out: told apart from a
/// cell that answered with an error, so the message can say the cell is not running.
fn nothing_listens(url: &str) -> bool {
    let authority = url.trim_start_matches("https://").trim_end_matches('/');
    let Ok(addrs) = authority.to_socket_addrs() else {
        return false;
    };
    let addrs: Vec<_> = addrs.collect();
    !addrs.is_empty()
        && addrs
            .iter()
            .all(|a| TcpStream::connect_timeout(a, Duration::from_secs(2)).is_err())
}
