//! Start-up of the local server (`qchat_local::start`, which builds the app with `App::from_config`) on a
//! data folder: a fresh folder starts and creates its master key; a folder that holds encrypted data
//! starts only with the master key that data was encrypted under, and otherwise says what is wrong and
//! what to do, without ever creating a key.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use qchat_local::LocalError;
use qchat_shared::app::{App, StartupError, local_files};
use qchat_shared::config::Config;
use qchat_shared::crypto::Sealed;
use qchat_shared::store::ItemKey;

const OWNER: &str = "account:startup-test";
const SECRET: &[u8] = b"ana@example.com";

fn config(dir: &Path) -> Config {
    let data_dir = dir.display().to_string();
    Config::from_lookup(|name| match name {
        "QCHAT_DATA_DIR" => Some(data_dir.clone()),
        "QCHAT_ADDR" => Some("127.0.0.1:0".to_owned()),
        _ => None,
    })
    .expect("a local configuration")
}

async fn start(dir: &Path) -> Result<App, LocalError> {
    qchat_local::start(config(dir))
        .await
        .map(|started| started.app)
}

/// The whole message `qchat-local` prints: the error and its causes.
fn message(e: &LocalError) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(&format!("\n  caused by: {s}"));
        source = s.source();
    }
    text
}

fn key_item() -> ItemKey {
    ItemKey::new("ACCOUNT#startup-test", "PROFILE")
}

/// What a first registration leaves: the blind-index key and an account's data key in the store, and a
/// value encrypted under it (kept here, as a stored field would be). Returns the value and its index.
async fn populate(app: &App) -> (Sealed, String) {
    let index = app
        .keys
        .blind_indexer()
        .await
        .expect("the blind-index key is made")
        .index("email", SECRET);
    app.keys.create(OWNER).await.expect("a data key is made");
    let sealed = app
        .keys
        .cipher(OWNER)
        .await
        .expect("a cipher")
        .seal(&key_item(), "email", SECRET)
        .expect("sealed");
    (sealed, index.as_str().to_owned())
}

/// The restarted app reads the value back and indexes it the same way.
async fn assert_reads_back(app: &App, sealed: &Sealed, index: &str) {
    let opened = app
        .keys
        .open(OWNER, &key_item(), "email", sealed)
        .await
        .expect("the value opens after the restart");
    assert_eq!(opened.as_bytes(), SECRET);
    let again = app
        .keys
        .blind_indexer()
        .await
        .expect("the blind-index key opens")
        .index("email", SECRET);
    assert_eq!(again.as_str(), index, "lookups by email still find it");
}

fn assert_tells_what_to_do(text: &str) {
    for needed in [
        local_files::MASTER_KEY,
        "from a backup",
        "move the data folder away to start afresh",
    ] {
        assert!(text.contains(needed), "{needed:?} in {text:?}");
    }
}

#[tokio::test]
async fn a_fresh_data_folder_starts_and_creates_its_master_key() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let app = start(dir.path()).await.expect("a fresh folder starts");
    let key = dir.path().join(local_files::MASTER_KEY);
    let meta = std::fs::metadata(&key).expect("the master key is created");
    assert_eq!(meta.len(), 32);
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let (sealed, index) = populate(&app).await;
    drop(app);

    let app = start(dir.path())
        .await
        .expect("a folder with its own master key starts again");
    assert_reads_back(&app, &sealed, &index).await;
}

#[tokio::test]
async fn a_folder_holding_data_refuses_to_start_without_its_master_key_until_it_is_restored() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let app = start(dir.path()).await.expect("a fresh folder starts");
    let (sealed, index) = populate(&app).await;
    drop(app);
    let key = dir.path().join(local_files::MASTER_KEY);
    let backup = std::fs::read(&key).expect("the master key");
    std::fs::remove_file(&key).expect("the key is deleted");

    for attempt in 1..=2 {
        let err = start(dir.path())
            .await
            .err()
            .unwrap_or_else(|| panic!("start {attempt} without the master key must fail"));
        assert!(
            matches!(
                err,
                LocalError::Startup(StartupError::MasterKeyMissing { .. })
            ),
            "{err:?}"
        );
        let text = message(&err);
        assert!(text.contains("is missing"), "{text}");
        assert_tells_what_to_do(&text);
        assert!(
            !key.exists(),
            "no new master key is created (start {attempt})"
        );
    }

    std::fs::write(&key, &backup).expect("the key is restored");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("mode 0600");
    let app = start(dir.path())
        .await
        .expect("the restored key starts the server");
    assert_reads_back(&app, &sealed, &index).await;
}

#[tokio::test]
async fn a_folder_holding_data_refuses_to_start_with_another_master_key() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let app = start(dir.path()).await.expect("a fresh folder starts");
    let (sealed, index) = populate(&app).await;
    drop(app);
    let key = dir.path().join(local_files::MASTER_KEY);
    let backup = std::fs::read(&key).expect("the master key");
    let other = qchat_shared::crypto::random_bytes::<32>();
    std::fs::write(&key, other).expect("another key is put in place");

    let err = start(dir.path())
        .await
        .expect_err("another master key must not start");
    assert!(
        matches!(
            err,
            LocalError::Startup(StartupError::MasterKeyMismatch { .. })
        ),
        "{err:?}"
    );
    let text = message(&err);
    assert!(
        text.contains("is not the key the store's data was encrypted under"),
        "{text}"
    );
    assert_tells_what_to_do(&text);
    assert_eq!(
        std::fs::read(&key).expect("the key file"),
        other,
        "the key file is left as it was"
    );

    std::fs::write(&key, &backup).expect("the right key is restored");
    let app = start(dir.path())
        .await
        .expect("the right key starts the server");
    assert_reads_back(&app, &sealed, &index).await;
}

/// The `pk`s of every item in one SQLite store file, read without qchat's store code.
fn partitions(file: &Path) -> Vec<String> {
    let conn = rusqlite::Connection::open(file).expect("the file opens");
    let mut stmt = conn.prepare("SELECT pk FROM items").expect("items");
    stmt.query_map([], |r| r.get::<_, String>(0))
        .expect("rows")
        .collect::<Result<_, _>>()
        .expect("every row")
}

#[tokio::test]
async fn the_data_keys_live_in_their_own_file_so_a_copy_of_the_main_file_holds_none() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let app = start(dir.path()).await.expect("a fresh folder starts");
    let (sealed, index) = populate(&app).await;
    drop(app);
    let main = partitions(&dir.path().join(local_files::STORE));
    let keys = partitions(&dir.path().join(local_files::KEY_STORE));
    assert!(
        main.iter().all(|pk| !pk.starts_with("DATAKEY#")),
        "no data key in the main file: {main:?}"
    );
    assert!(keys.iter().any(|pk| pk == &format!("DATAKEY#{OWNER}")));
    assert!(keys.iter().any(|pk| pk == "DATAKEY#system:blind-index"));
    let app = start(dir.path()).await.expect("it starts again");
    assert_reads_back(&app, &sealed, &index).await;
}

#[tokio::test]
async fn a_folder_that_lost_its_key_store_refuses_to_start_and_never_makes_new_keys() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let app = start(dir.path()).await.expect("a fresh folder starts");
    let holder = qchat_shared::domain::AccountId::generate(app.ids.as_ref());
    let item = qchat_shared::store::Item::new(
        &qchat_shared::inventory::ACCOUNT,
        qchat_shared::accounts::profile_key(&holder),
    )
    .with_gsi1(
        qchat_shared::accounts::ALL_ACCOUNTS_PARTITION,
        holder.as_str(),
    );
    app.store
        .put(item, qchat_shared::store::Condition::NotExists)
        .await
        .expect("an account is listed");
    populate(&app).await;
    drop(app);
    let keys = dir.path().join(local_files::KEY_STORE);
    std::fs::remove_file(&keys).expect("the key store is lost");
    let _ = std::fs::remove_file(dir.path().join(format!("{}-wal", local_files::KEY_STORE)));
    let _ = std::fs::remove_file(dir.path().join(format!("{}-shm", local_files::KEY_STORE)));

    let err = start(dir.path())
        .await
        .expect_err("a folder without its key store must not start");
    assert!(
        matches!(
            err,
            LocalError::Startup(StartupError::KeyStoreMissing { .. })
        ),
        "{err:?}"
    );
    let text = message(&err);
    assert!(text.contains(local_files::KEY_STORE), "{text}");
    assert!(text.contains("from a backup"), "{text}");
    assert!(
        partitions(&keys).is_empty(),
        "no key is made in the empty key store"
    );
}

#[tokio::test]
async fn a_folder_whose_main_file_holds_data_keys_refuses_to_start() {
    use std::sync::Arc;
    let dir = tempfile::tempdir().expect("a temporary folder");
    // The layout of an older qchat: the keys in the main file.
    let clock: Arc<dyn qchat_shared::clock::Clock> = Arc::new(qchat_shared::clock::SystemClock);
    let main = qchat_shared::store::sqlite::SqliteStore::open(
        &dir.path().join(local_files::STORE),
        clock.clone(),
    )
    .expect("the main file opens");
    let keyring =
        qchat_shared::crypto::LocalKeyring::open(&dir.path().join(local_files::MASTER_KEY))
            .expect("a master key");
    qchat_shared::crypto::KeyManager::new(
        Arc::new(main),
        Arc::new(keyring),
        clock,
        qchat_shared::crypto::KeyCachePolicy::default(),
    )
    .blind_indexer()
    .await
    .expect("the blind-index key is made in the main file");

    let err = start(dir.path())
        .await
        .expect_err("keys in the main file must not start");
    assert!(
        matches!(
            err,
            LocalError::Startup(StartupError::KeysInMainStore { .. })
        ),
        "{err:?}"
    );
    assert!(message(&err).contains("start afresh"));
}
