//! Everything `serve` writes into its data directory is owner-only, even under `umask 000`:
//! the directories 0700, the files 0600 — the SQLite database with its `-wal` and `-shm`, the
//! development credentials, the embedded emulator's state.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::ServeProcess;
use test_support::{both_backends, Backend, TestDb};

/// `path mode` of everything under `dir` (itself included) that is not owner-only.
fn wider_than_owner_only(dir: &Path) -> Vec<String> {
    let mut wide = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        if mode != 0o700 {
            wide.push(format!("{} {mode:o}", dir.display()));
        }
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            // A file may vanish meanwhile.
            let Ok(meta) = std::fs::metadata(&path) else {
                continue;
            };
            let mode = meta.permissions().mode() & 0o777;
            if mode != 0o600 {
                wide.push(format!("{} {mode:o}", path.display()));
            }
        }
    }
    wide
}

async fn the_data_directory_is_owner_only_whatever_the_umask(backend: Backend) {
    let db = TestDb::named(backend, "idv_modes").await;
    // Not there yet: serve creates it (and the parent in between).
    let data_dir = db.dir.path().join("state").join("idverdict");
    let data = data_dir.to_str().unwrap();
    let mut envs = vec![
        ("IDVERDICT_LISTEN", "127.0.0.1:0"),
        ("IDVERDICT_EMULATOR_LISTEN", "127.0.0.1:0"),
        ("IDVERDICT_DATA_DIR", data),
    ];
    if backend == Backend::Postgres {
        envs.push(("DATABASE_URL", &db.url));
    }
    // Dev mode (no secret, no token): credentials generated, the emulator embedded.
    let server = ServeProcess::start(&["sh", "-c", "umask 000 && exec \"$0\" \"$@\""], &envs);
    let res = reqwest::get(server.url("/readyz")).await.expect("readyz");
    assert_eq!(res.status(), 200);

    let names: Vec<String> = std::fs::read_dir(&data_dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    for expected in ["dev-webhook-secret", "dev-api-token", "emulator"] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} in {names:?}"
        );
    }
    if backend == Backend::Sqlite {
        for expected in ["idverdict.db", "idverdict.db-wal", "idverdict.db-shm"] {
            assert!(
                names.iter().any(|n| n == expected),
                "{expected} in {names:?}"
            );
        }
    }
    let wide = wider_than_owner_only(&data_dir);
    assert!(wide.is_empty(), "not owner-only under umask 000: {wide:?}");
    // The parent that serve had to create too.
    let parent = std::fs::metadata(data_dir.parent().unwrap()).unwrap();
    assert_eq!(parent.permissions().mode() & 0o777, 0o700);

    let status = server.stop();
    assert!(status.success(), "{status:?}");
    let wide = wider_than_owner_only(&data_dir);
    assert!(wide.is_empty(), "not owner-only after the stop: {wide:?}");
}
both_backends!(the_data_directory_is_owner_only_whatever_the_umask);
