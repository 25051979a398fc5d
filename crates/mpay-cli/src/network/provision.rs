//! Provisioning is `mpay_network::provision`'s; the CLI adds what a
//! command does at its edge.

use std::path::Path;

pub use mpay_network::provision::*;

/// [`drop_databases`] for a temporary network that is done with: a failure
/// is told on stderr, not returned (the run's result matters more).
pub fn drop_temporary_databases(runtime: &tokio::runtime::Runtime, server: &str, dir: &Path) {
    if let Err(error) = runtime.block_on(drop_databases(server, dir)) {
        eprintln!("warning: the network's databases were not all dropped: {error}");
    }
}
