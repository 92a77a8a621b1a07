//! Per-cell answers for `keyfrag doctor`: every cell's reply or failure on its own, without
//! the agreement checks of the normal operations (the doctor reports disagreement itself).

use std::time::{Duration, Instant};

use futures::future::join_all;
use keyfrag_proto::info::InfoResponse;
use keyfrag_proto::keys::{RsaPartialRequest, RsaPartialResponse};

use super::{Cluster, get, post};
use crate::error::Result;
use crate::{TokenStatus, UserKind};

impl Cluster {
    /// Every cell's `/v1/info`, in cell order. The outer error: the transport could not be
    /// built (an unreadable CA or access-key file).
    pub fn cell_infos(&self) -> Result<Vec<Result<InfoResponse>>> {
        let t = self.transport()?;
        Ok(t.runtime
            .block_on(join_all(t.cells.iter().map(|c| c.call(get("info"))))))
    }

    /// Every cell's token status (its metadata hash included), in cell order.
    pub fn cell_token_statuses(&self) -> Result<Vec<Result<TokenStatus>>> {
        let t = self.transport()?;
        Ok(t.runtime
            .block_on(join_all(t.cells.iter().map(|c| c.call(get("token"))))))
    }

    /// One partial from each cell in turn (so each time is the cell's alone), at each cell's
    /// committed epoch; needs a user login.
    pub fn cell_partials_timed(
        &self,
        uid: &str,
        blinded_input: &[u8],
    ) -> Result<Vec<(Result<RsaPartialResponse>, Duration)>> {
        let tokens = self.login_tokens(Some(UserKind::User))?;
        let t = self.transport()?;
        let path = format!("keys/{uid}/rsa-partial");
        let body = RsaPartialRequest {
            input: blinded_input.to_vec(),
            epoch: None,
        };
        let mut out = Vec::with_capacity(t.cells.len());
        for (cell, token) in t.cells.iter().zip(&tokens) {
            let started = Instant::now();
            let r = t.runtime.block_on(cell.call::<_, RsaPartialResponse>(post(
                &path,
                &body,
                Some(token.as_str()),
                true,
            )));
            out.push((r, started.elapsed()));
        }
        Ok(out)
    }
}
