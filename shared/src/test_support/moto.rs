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

use aws_config::{BehaviorVersion, Region};
use aws_sdk_dynamodb::config::Credentials;

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
pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "moto"))
        .endpoint_url(endpoint())
        .load()
        .await
}

/// moto's record of everything it emulated (`GET /moto-api/data.json`), e.g. `["ses"]["Message"]`.
///
/// moto serialises its whole state for this answer, and fails it (500, or a cut body) when another test
/// changes that state meanwhile, so a failed read is tried again a few times.
pub async fn recorded_data() -> serde_json::Value {
    let url = format!("{}/moto-api/data.json", endpoint());
    for attempt in 1..=10u64 {
        match reqwest::get(&url).await {
            Ok(r) if r.status().is_success() => {
                if let Ok(data) = r.json::<serde_json::Value>().await {
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
