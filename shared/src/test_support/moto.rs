//! The moto AWS emulator for the AWS backends' tests.
//!
//! The test command (`./infra/test.sh`) starts one emulator for the whole run and exports its address as
//! `QCHAT_TEST_MOTO_ENDPOINT`. A test binary run on its own starts one itself from the project's `.venv`
//! (made by the test command), once per process. If neither works the tests fail and say how to fix it:
//! the AWS backends are never skipped.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// The environment variable holding the emulator's base URL.
pub const ENDPOINT_VAR: &str = "QCHAT_TEST_MOTO_ENDPOINT";

static ENDPOINT: OnceLock<Result<String, String>> = OnceLock::new();

fn workspace_root() -> PathBuf {
    // shared/ is one level below the workspace root.
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn start_own() -> Result<String, String> {
    let root = workspace_root();
    let python = root.join(".venv/bin/python");
    let script = root.join("infra/moto_server.py");
    let how_to_fix = "run ./infra/test.sh once (it creates .venv with moto[server]), \
                      or start infra/moto_server.py and set QCHAT_TEST_MOTO_ENDPOINT=http://127.0.0.1:<port>";
    let mut child = Command::new(&python)
        .arg(&script)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| {
            format!(
                "could not start the moto emulator with {}: {e}; {how_to_fix}",
                python.display()
            )
        })?;
    let stdout = child.stdout.take().ok_or("moto emulator has no stdout")?;
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .map_err(|e| format!("moto emulator did not report its port: {e}; {how_to_fix}"))?;
    let port: u16 = line
        .trim()
        .parse()
        .map_err(|_| format!("moto emulator did not start (said {line:?}); {how_to_fix}"))?;
    // The emulator watches its parent and exits with this test process; the child handle is not kept.
    Ok(format!("http://127.0.0.1:{port}"))
}

/// The emulator's base URL, starting one if the test command did not.
///
/// # Panics
/// When no emulator can be reached or started: the message says how to fix it.
pub fn endpoint() -> String {
    let result = ENDPOINT.get_or_init(|| match std::env::var(ENDPOINT_VAR) {
        Ok(url) if !url.is_empty() => Ok(url),
        _ => start_own(),
    });
    match result {
        Ok(url) => url.clone(),
        Err(why) => panic!("AWS backend tests need the moto emulator: {why}"),
    }
}

/// An SDK configuration pointing at the emulator, with fixed test credentials and region.
pub async fn sdk_config() -> aws_types::SdkConfig {
    let endpoint = endpoint();
    crate::aws_env::sdk_config(|name| {
        match name {
            "AWS_REGION" => Some("us-east-1"),
            "AWS_ACCESS_KEY_ID" | "AWS_SECRET_ACCESS_KEY" => Some("testing"),
            "AWS_ENDPOINT_URL" => Some(endpoint.as_str()),
            _ => None,
        }
        .map(str::to_owned)
    })
    .unwrap_or_else(|e| panic!("{e}"))
}

/// A fresh symmetric KMS key in the emulator (described `<purpose>-<unique>`), by id.
///
/// # Errors
/// The emulator's, or an answer without the key's metadata.
pub async fn create_kms_key(
    client: &aws_sdk_kms::Client,
    purpose: &str,
) -> Result<String, Box<dyn std::error::Error + Send + Sync>> {
    let created = client
        .create_key()
        .description(crate::test_support::unique_name(purpose))
        .send()
        .await?;
    Ok(created
        .key_metadata
        .map(|m| m.key_id)
        .ok_or("CreateKey returned no key metadata")?)
}

/// moto's record of everything it emulated (`GET /moto-api/data.json`), e.g. `["ses"]["Message"]`.
///
/// moto serialises its whole state for this answer, and fails it (500, or a cut body) when another test
/// changes that state meanwhile, so a failed read is tried again a few times.
pub async fn recorded_data() -> serde_json::Value {
    use http_body_util::BodyExt as _;
    let url = format!("{}/moto-api/data.json", endpoint());
    let https = crate::https::shared().unwrap_or_else(|e| panic!("{e}"));
    for attempt in 1..=10u64 {
        let request = http::Request::get(&url)
            .body(aws_smithy_types::body::SdkBody::empty())
            .unwrap_or_else(|e| panic!("{e}"));
        match https.send(request).await {
            Ok(r) if r.status().is_success() => {
                if let Ok(body) = r.into_body().collect().await
                    && let Ok(data) = serde_json::from_slice(&body.to_bytes())
                {
                    return data;
                }
            }
            Ok(_) => {}
            Err(e) => panic!("could not read moto's data: {e}"),
        }
        tokio::time::sleep(std::time::Duration::from_millis(50 * attempt)).await;
    }
    panic!("moto's data could not be read in 10 attempts");
}

/// One stored item as the raw-store scans see it: each attribute's name and its value flattened to bytes
/// (strings and numbers as text, binaries as they are, sets and lists one element a line), sorted by name.
pub type ScannedItem = Vec<(String, Vec<u8>)>;

/// Every item of `table`, read with a consistent Scan across all pages — what the privacy tests search
/// for plaintext.
///
/// # Panics
/// If the table cannot be scanned or holds an attribute kind the SDK does not name (a test's failure).
pub async fn scan_table(client: &aws_sdk_dynamodb::Client, table: &str) -> Vec<ScannedItem> {
    use aws_sdk_dynamodb::types::AttributeValue;

    fn flatten(value: &AttributeValue, out: &mut Vec<u8>) {
        match value {
            AttributeValue::S(s) | AttributeValue::N(s) => out.extend_from_slice(s.as_bytes()),
            AttributeValue::B(b) => out.extend_from_slice(b.as_ref()),
            AttributeValue::Bool(b) => out.extend_from_slice(b.to_string().as_bytes()),
            AttributeValue::Null(_) => out.extend_from_slice(b"null"),
            AttributeValue::Ss(v) | AttributeValue::Ns(v) => {
                for s in v {
                    out.extend_from_slice(s.as_bytes());
                    out.push(b'\n');
                }
            }
            AttributeValue::Bs(v) => {
                for b in v {
                    out.extend_from_slice(b.as_ref());
                    out.push(b'\n');
                }
            }
            AttributeValue::L(list) => {
                for v in list {
                    flatten(v, out);
                    out.push(b'\n');
                }
            }
            AttributeValue::M(map) => {
                for (k, v) in map {
                    out.extend_from_slice(k.as_bytes());
                    out.push(b'=');
                    flatten(v, out);
                    out.push(b'\n');
                }
            }
            other => panic!("an attribute value of an unknown kind: {other:?}"),
        }
    }

    let mut items = Vec::new();
    let mut start = None;
    loop {
        let page = match client
            .scan()
            .table_name(table)
            .consistent_read(true)
            .set_exclusive_start_key(start)
            .send()
            .await
        {
            Ok(page) => page,
            Err(e) => panic!("the table could not be scanned: {e}"),
        };
        for map in page.items() {
            let mut item: ScannedItem = map
                .iter()
                .map(|(name, value)| {
                    let mut bytes = Vec::new();
                    flatten(value, &mut bytes);
                    (name.clone(), bytes)
                })
                .collect();
            item.sort();
            items.push(item);
        }
        match page.last_evaluated_key() {
            Some(key) if !key.is_empty() => start = Some(key.clone()),
            _ => return items,
        }
    }
}
