//! Each Lambda binary links only what its function uses: the embedded backends (SQLite, the outboxes)
//! never, and the SES, Graph API and Secrets Manager clients only where the function calls them. Read
//! from cargo's own dependency tree of each function built alone, as `sam build` builds it.

use std::collections::BTreeSet;
use std::process::Command;

/// The crates a function's binary links, by name (normal dependencies, its own features only).
fn linked(package: &str) -> BTreeSet<String> {
    let out = Command::new(env!("CARGO"))
        .args([
            "tree",
            "--offline",
            "-e",
            "normal",
            "--prefix",
            "none",
            "-f",
            "{p}",
            "-p",
        ])
        .arg(package)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .output()
        .expect("cargo runs");
    assert!(
        out.status.success(),
        "cargo tree -p {package}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

/// What links a crate that only some functions may have. (`graph` adds no crate: the Graph API is
/// called over the HTTPS client every function has; a function's `main` links its messenger only
/// when it names it, `Clients::with_graph`.)
const OPTIONAL: &[(&str, &str)] = &[
    ("rusqlite", "local"),
    ("mail-builder", "local"),
    ("aws-sdk-ses", "ses"),
    ("aws-sdk-secretsmanager", "secretsmanager"),
];

#[test]
fn every_function_links_only_the_backends_and_clients_it_uses() {
    for (package, uses) in [
        ("qchat-account", &["graph", "secretsmanager"][..]),
        ("qchat-notify", &["ses", "graph", "secretsmanager"][..]),
        ("qchat-webhook", &["secretsmanager"][..]),
        ("qchat-optin", &[][..]),
        ("qchat-erase", &["graph", "secretsmanager"][..]),
        ("qchat-broadcast", &["graph", "secretsmanager"][..]),
    ] {
        let crates = linked(package);
        for needed in ["aws-sdk-dynamodb", "aws-sdk-kms", "aws-lc-rs"] {
            assert!(crates.contains(needed), "{package} links {needed}");
        }
        for (krate, feature) in OPTIONAL {
            assert_eq!(
                crates.contains(*krate),
                uses.contains(feature),
                "{package} links {krate} only if it uses `{feature}`"
            );
        }
    }
}

#[test]
fn the_local_server_links_every_backend() {
    let crates = linked("qchat-local");
    for (krate, _) in OPTIONAL {
        assert!(crates.contains(*krate), "qchat-local links {krate}");
    }
}

/// Crates of a second HTTP client or TLS stack beside the one of `shared/src/https.rs` (hyper-util over
/// hyper-rustls, HTTP/1.1, rustls on aws-lc-rs).
const SECOND_CLIENT: &[&str] = &[
    "reqwest",
    "h2",
    "aws-smithy-http-client",
    "aws-config",
    "ring",
    "openssl",
    "native-tls",
    "rustls-platform-verifier",
    "webpki-roots",
];

#[test]
fn every_function_has_one_http_client_and_one_tls_stack() {
    for package in [
        "qchat-account",
        "qchat-notify",
        "qchat-webhook",
        "qchat-optin",
        "qchat-erase",
        "qchat-broadcast",
        "qchat-local",
    ] {
        let crates = linked(package);
        for krate in ["hyper-util", "hyper-rustls", "rustls", "aws-lc-rs"] {
            assert!(crates.contains(krate), "{package} links {krate}");
        }
        for krate in SECOND_CLIENT {
            assert!(!crates.contains(*krate), "{package} links {krate}");
        }
    }
}
