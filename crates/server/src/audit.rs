//! Audit lines (tracing target `audit`): who, which key or token, which operation, the result.
//! Never data: no inputs, outputs, shares or PINs.

pub fn record(token: &str, subject: &str, operation: &str, result: &str) {
    tracing::info!(target: "audit", token, subject, operation, result);
}
