//! The wire version a cell speaks, from the `x-keyfrag-wire` header of its every answer: a
//! cell of another version is refused by name before its answer is parsed, rather than
//! misread. A cell that sends no header predates the header and speaks version 1.

use keyfrag_proto::{WIRE_HEADER, WIRE_VERSION};
use reqwest::header::HeaderMap;

use crate::error::{ClientError, ErrorKind, Result};

const BEFORE_HEADER: u32 = 1;

pub(crate) fn check(cell: &str, headers: &HeaderMap) -> Result<()> {
    check_value(
        cell,
        headers
            .get(WIRE_HEADER)
            .map(|v| v.to_str().unwrap_or("unreadable")),
    )
}

/// `check` on the header's value (None: no header).
pub(crate) fn check_value(cell: &str, value: Option<&str>) -> Result<()> {
    let spoken = match value {
        None => BEFORE_HEADER,
        Some(v) => v.trim().parse::<u32>().ok().ok_or_else(|| {
            ClientError::new(
                ErrorKind::Device,
                format!("cell {cell} sent an unreadable wire version"),
            )
        })?,
    };
    if spoken == WIRE_VERSION {
        return Ok(());
    }
    let err = ClientError::new(
        ErrorKind::Device,
        format!(
            "cell {cell} speaks wire version {spoken}, this client speaks {WIRE_VERSION}: \
             upgrade {} so both speak the same version",
            if spoken > WIRE_VERSION {
                "this client (the PKCS#11 module / keyfrag)".to_string()
            } else {
                format!("cell {cell}")
            }
        ),
    );
    tracing::error!("{}", err.message);
    Err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(v: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(v) = v {
            h.insert(WIRE_HEADER, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn another_version_is_refused_by_cell_name() {
        assert!(check("cell-a", &headers(None)).is_ok());
        assert!(check("cell-a", &headers(Some(&WIRE_VERSION.to_string()))).is_ok());
        let e = check("cell-b", &headers(Some(&(WIRE_VERSION + 1).to_string()))).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Device);
        assert!(
            e.message.contains("cell cell-b speaks wire version 2")
                && e.message.contains("upgrade this client"),
            "{}",
            e.message
        );
        let e = check("cell-c", &headers(Some("x"))).unwrap_err();
        assert!(e.message.contains("cell-c") && e.message.contains("unreadable"));
    }
}
