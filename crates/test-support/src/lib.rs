//! What every storage test needs: a fresh database per test on each backend, and a macro that
//! runs one async test body once per backend. PostgreSQL tests use the server on
//! 127.0.0.1:5432 (`scripts/test` starts it) and create a uniquely named database each.

use rand::Rng;
use sqlx::{AnyConnection, Connection, Executor};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Run `async fn $name(backend: Backend)` once per backend, as `$name::sqlite` and
/// `$name::postgres`.
#[macro_export]
macro_rules! both_backends {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::Backend::Sqlite).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name($crate::Backend::Postgres).await;
            }
        }
    };
}

/// The PostgreSQL server tests create their databases on (`IDVERDICT_TEST_PG` overrides).
pub fn pg_admin_url() -> String {
    std::env::var("IDVERDICT_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

/// A fresh database for one test. The temp dir (SQLite file, a data dir for the service)
/// lives as long as this value; a PostgreSQL database is dropped with it (also when the test
/// panics), so repeated runs do not fill the server's disk.
pub struct TestDb {
    pub url: String,
    pub backend: Backend,
    pub dir: tempfile::TempDir,
    /// The PostgreSQL database to drop when the test ends.
    pg_name: Option<String>,
}

impl TestDb {
    pub async fn new(backend: Backend) -> TestDb {
        TestDb::named(backend, "idv_test").await
    }

    /// As `new`, with the PostgreSQL database named `{prefix}_{random}` (easier to spot).
    pub async fn named(backend: Backend, prefix: &str) -> TestDb {
        sqlx::any::install_default_drivers();
        let dir = tempfile::tempdir().expect("temp dir");
        let mut pg_name = None;
        let url = match backend {
            Backend::Sqlite => format!("sqlite://{}", dir.path().join("idverdict.db").display()),
            Backend::Postgres => {
                let suffix: String = rand::thread_rng()
                    .sample_iter(rand::distributions::Alphanumeric)
                    .take(12)
                    .map(|c| char::from(c).to_ascii_lowercase())
                    .collect();
                let name = format!("{prefix}_{suffix}");
                let admin = pg_admin_url();
                let mut conn = AnyConnection::connect(&admin).await.expect(
                    "PostgreSQL must be running on 127.0.0.1:5432 (scripts/test starts it)",
                );
                conn.execute(format!("CREATE DATABASE {name}").as_str())
                    .await
                    .expect("create database");
                let _ = conn.close().await;
                let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
                pg_name = Some(name.clone());
                format!("{base}/{name}")
            }
        };
        TestDb {
            url,
            backend,
            dir,
            pg_name,
        }
    }

    /// A raw connection for assertions and fault injection.
    pub async fn raw(&self) -> AnyConnection {
        let url = match self.backend {
            Backend::Sqlite => format!("{}?mode=rw", self.url),
            Backend::Postgres => self.url.clone(),
        };
        AnyConnection::connect(&url).await.expect("raw connection")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some(name) = self.pg_name.take() else {
            return;
        };
        // Drop runs inside the test's runtime, which cannot be blocked on: a thread of its own
        // with its own runtime. FORCE ends the connections a service under test still holds.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async move {
                let mut conn = AnyConnection::connect(&pg_admin_url()).await.ok()?;
                conn.execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
                    .await
                    .ok()?;
                let _ = conn.close().await;
                Some(())
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(()))) {
            eprintln!("test-support: could not drop a test database (left on the server)");
        }
    }
}
