//! Every answer names the wire version this cell speaks (`x-keyfrag-wire`), so a client of
//! another version refuses the cell by name instead of misreading it.

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use keyfrag_proto::{WIRE_HEADER, WIRE_VERSION};

pub async fn stamp(req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    response
        .headers_mut()
        .insert(WIRE_HEADER, HeaderValue::from(WIRE_VERSION));
    response
}
