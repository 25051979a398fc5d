//! The boundary this crate stands for: no core crate reaches a clock, SQL,
//! HTTP, sockets or an async runtime, not even through a dependency; and
//! the client crates reach no database and no server. Read from `cargo
//! metadata`, so a new dependency that crosses the line fails here
//! (ARCHITECTURE.md, "Codemap" and "Boundaries").

use std::collections::{BTreeSet, HashMap};
use std::process::Command;

use serde_json::Value;

/// The pure cores: they take `now`, randomness and storage from a driver.
const CORES: &[&str] = &[
    "mpay-wire",
    "mpay-money",
    "mpay-identity",
    "mpay-envelope",
    "mpay-offline",
    "mpay-processor",
    "mpay-semops",
    "mpay-report",
];

/// Packages no core may depend on, directly or not.
const DRIVER_ONLY: &[&str] = &[
    "mpay-clock",
    "mpay-sql",
    "mpay-tls",
    "mpay-http",
    "mpay-fs",
    "sqlx",
    "rusqlite",
    "tokio",
    "axum",
    "hyper",
    "reqwest",
    "mio",
];

/// What a client (the CLI, a phone's bindings) links to talk to the
/// services: HTTP and TLS as a client, nothing of a server or a database.
const CLIENTS: &[&str] = &["mpay-api", "mpay-tls-client"];

/// Packages no client crate may depend on, directly or not.
const SERVER_ONLY: &[&str] = &[
    "mpay-sql",
    "mpay-http",
    "mpay-tls",
    "mpay-network",
    "mpay-bank",
    "sqlx",
    "rusqlite",
    "axum",
    "rcgen",
];

/// The host's target triple (what this test was built for).
fn host() -> String {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let out = Command::new(rustc)
        .arg("-vV")
        .output()
        .expect("rustc -vV runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .expect("rustc names its host")
        .to_owned()
}

/// Package name → its normal (not dev, not build) dependencies' names.
fn graph() -> HashMap<String, Vec<String>> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--offline"])
        .args(["--filter-platform", &host()])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: Value = serde_json::from_slice(&out.stdout).expect("metadata is JSON");
    let names: HashMap<&str, &str> = meta["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .map(|p| {
            (
                p["id"].as_str().expect("id"),
                p["name"].as_str().expect("name"),
            )
        })
        .collect();
    let mut graph = HashMap::new();
    for node in meta["resolve"]["nodes"].as_array().expect("resolve nodes") {
        let name = names[node["id"].as_str().expect("node id")].to_owned();
        let deps = node["deps"]
            .as_array()
            .expect("deps")
            .iter()
            .filter(|d| {
                d["dep_kinds"]
                    .as_array()
                    .is_some_and(|kinds| kinds.iter().any(|k| k["kind"].is_null()))
            })
            .map(|d| names[d["pkg"].as_str().expect("dep id")].to_owned())
            .collect();
        graph.insert(name, deps);
    }
    graph
}

fn closure(graph: &HashMap<String, Vec<String>>, root: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut todo = vec![root.to_owned()];
    while let Some(name) = todo.pop() {
        for dep in graph.get(&name).into_iter().flatten() {
            if seen.insert(dep.clone()) {
                todo.push(dep.clone());
            }
        }
    }
    seen
}

#[test]
fn no_core_crate_reaches_a_clock_sql_http_or_a_runtime() {
    let graph = graph();
    let mut problems = Vec::new();
    for core in CORES {
        assert!(graph.contains_key(*core), "{core} is not in the workspace");
        let reached = closure(&graph, core);
        for banned in DRIVER_ONLY {
            if reached.contains(*banned) {
                problems.push(format!("{core} depends on {banned}"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn no_client_crate_reaches_a_database_or_a_server() {
    let graph = graph();
    let mut problems = Vec::new();
    for client in CLIENTS {
        assert!(
            graph.contains_key(*client),
            "{client} is not in the workspace"
        );
        let reached = closure(&graph, client);
        for banned in SERVER_ONLY {
            if reached.contains(*banned) {
                problems.push(format!("{client} depends on {banned}"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_check_sees_a_driver_crossing_the_line() {
    // mpay-network is a driver: the same walk must find what it uses.
    let reached = closure(&graph(), "mpay-network");
    for expected in ["mpay-clock", "sqlx", "tokio", "axum", "reqwest", "mpay-api"] {
        assert!(
            reached.contains(expected),
            "mpay-network without {expected}"
        );
    }
}
