//! keyfrag CLI library: provisioning of local clusters (`keyfrag dev up`) and the testbed
//! that tests across the workspace use to run cells in-process.

pub mod provision;
pub mod testbed;
