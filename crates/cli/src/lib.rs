//! keyfrag CLI library: provisioning of local clusters (`keyfrag dev up`), key listing,
//! proactive refresh (`keyfrag refresh`), the PKCS#11 benchmark (`keyfrag bench`), and
//! the testbed that tests across the workspace use to run cells in-process.

#![forbid(unsafe_code)]

pub mod backup;
pub mod bench;
pub mod cluster_create;
pub mod customer_fragment;
pub mod dev;
pub mod doctor;
pub mod keys;
pub mod operator;
pub mod pool;
pub mod provision;
pub mod refresh;
pub mod secret_input;
pub mod testbed;
