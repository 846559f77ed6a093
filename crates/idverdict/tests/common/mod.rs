//! Test harness: a real idverdict server on 127.0.0.1:0 over a fresh SQLite file or a fresh
//! PostgreSQL database, spoken to over HTTP.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use idverdict::config::{Config, Sources};
use idverdict::store::Store;
use idverdict::synth::{self, Kind, Spec};
use sqlx::{AnyConnection, Row};
use tokio::sync::oneshot;

pub const SECRET: &str = "whsec_test_secret_for_idverdict";
pub const TOKEN: &str = "test-api-token-0123456789";

pub mod console;
pub mod smtp;

#[allow(unused_imports)]
pub use test_support::{both_backends, Backend, TestDb};

/// The service's storage over a test database (migrated).
pub trait TestDbExt {
    async fn store(&self) -> Store;
}

impl TestDbExt for TestDb {
    async fn store(&self) -> Store {
        let store = Store::connect(&self.url).await.expect("connect");
        store.migrate().await.expect("migrate");
        store
    }
}

pub fn config(db: &TestDb, secrets: &[&str]) -> Config {
    config_with(db, secrets, &[])
}

/// `config` plus extra environment variables (reactions, policy…).
pub fn config_with(db: &TestDb, secrets: &[&str], extra: &[(&str, &str)]) -> Config {
    let extra: Vec<(String, String)> = extra
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let secrets = secrets.join(",");
    let data_dir = db.dir.path().display().to_string();
    let url = db.url.clone();
    let env = move |k: &str| -> Option<String> {
        match k {
            "IDVERDICT_LISTEN" => Some("127.0.0.1:0".into()),
            "STRIPE_WEBHOOK_SECRET" => Some(secrets.clone()),
            "IDVERDICT_API_TOKEN" => Some(TOKEN.into()),
            "DATABASE_URL" => Some(url.clone()),
            "IDVERDICT_DATA_DIR" => Some(data_dir.clone()),
            "IDVERDICT_BODY_LIMIT_BYTES" => Some("65536".into()),
            other => extra
                .iter()
                .find(|(k, _)| k == other)
                .map(|(_, v)| v.clone()),
        }
    };
    Config::load(&Sources {
        file: None,
        env: &env,
    })
    .expect("test config")
}

/// A processor over `store` with the default policy and no reactions, for tests that drive it
/// by hand (`run_once`) rather than through a running server.
pub fn processor(store: &Store) -> idverdict::processor::Processor {
    use std::sync::Arc;
    idverdict::processor::Processor::new(
        store.clone(),
        idverdict::decide::Policy::default(),
        Arc::new(idverdict::react::ReactConfig::default()),
        Arc::new(tokio::sync::Notify::new()),
        Arc::new(idverdict::ingest::IngestLoad::default()),
        Arc::new(tokio::sync::Notify::new()),
    )
}

/// A running server.
pub struct TestApp {
    pub addr: SocketAddr,
    pub http: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestApp {
    /// Writes `request` over a fresh TCP connection and reads until the server closes it:
    /// the response head and body. For requests a client library would not send, or whose
    /// answer it could lose (a body the server refuses unread: a client still writing it when
    /// the server closes can get a connection reset instead of the answer).
    pub async fn raw_exchange(&self, request: &str) -> (String, String) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut conn = tokio::net::TcpStream::connect(self.addr)
            .await
            .expect("connect");
        conn.write_all(request.as_bytes()).await.expect("write");
        let mut answer = Vec::new();
        // Bounded only so a broken build cannot hang the suite; the server closes after
        // answering.
        tokio::time::timeout(Duration::from_secs(30), conn.read_to_end(&mut answer))
            .await
            .expect("the server answers and closes")
            .expect("read");
        let answer = String::from_utf8_lossy(&answer).into_owned();
        let (head, body) = answer.split_once("\r\n\r\n").expect("a response");
        (head.to_string(), body.to_string())
    }

    pub async fn start(config: &Config) -> TestApp {
        let app = idverdict::App::build(config).await.expect("build app");
        let addr = app.local_addr().expect("addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            app.run_until(async {
                let _ = stopped.await;
            })
            .await
            .expect("serve");
        });
        TestApp {
            addr,
            http: reqwest::Client::new(),
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// POST a body with the given Stripe-Signature header (None = no header).
    pub async fn deliver(&self, body: &[u8], header: Option<&str>) -> (u16, serde_json::Value) {
        let mut req = self
            .http
            .post(self.url("/webhook"))
            .header("content-type", "application/json")
            .body(body.to_vec());
        if let Some(h) = header {
            req = req.header("Stripe-Signature", h);
        }
        let res = req.send().await.expect("request");
        let status = res.status().as_u16();
        let json = res.json().await.unwrap_or(serde_json::Value::Null);
        (status, json)
    }

    /// Sign with `SECRET` at the current time and deliver.
    pub async fn deliver_signed(&self, body: &[u8]) -> (u16, serde_json::Value) {
        let header = stripe_webhook::sign(body, SECRET, now());
        self.deliver(body, Some(&header)).await
    }

    pub async fn get(&self, path: &str) -> (u16, serde_json::Value) {
        let res = self
            .http
            .get(self.url(path))
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("request");
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(serde_json::Value::Null))
    }

    /// Graceful stop (what SIGTERM does).
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("server task");
        }
    }
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Wait (bounded) until every stored event has been processed. Not a timing assertion: the
/// bound only keeps a broken build from hanging the suite.
pub async fn drain(store: &Store) {
    for _ in 0..1200 {
        let (_, pending) = store.event_counts().await.expect("counts");
        if pending == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("events were not processed");
}

/// One identity event's bytes.
pub fn event(kind: Kind, session: &str, user: &str, created: i64) -> Vec<u8> {
    let mut spec = Spec::new(kind, session, created);
    spec.user_ref = Some(user.to_string());
    spec.session_created = created - 100;
    synth::event_bytes(&spec)
}

pub async fn count(conn: &mut AnyConnection, sql: &str) -> i64 {
    use sqlx::Row;
    let row = sqlx::query(sql).fetch_one(&mut *conn).await.expect(sql);
    row.try_get::<i64, _>(0).expect("count")
}

/// Every text/blob cell of every table, as `(table.column, value)`.
pub async fn dump(conn: &mut AnyConnection, backend: Backend) -> Vec<(String, String)> {
    // (table, column, read as bytes?)
    let columns: Vec<(String, String, bool)> = match backend {
        Backend::Postgres => sqlx::query(
            "SELECT table_name::text, column_name::text, data_type::text \
             FROM information_schema.columns WHERE table_schema = 'public' \
             AND data_type IN ('text', 'character varying', 'character', 'bytea', 'json', 'jsonb')",
        )
        .fetch_all(&mut *conn)
        .await
        .expect("columns")
        .iter()
        .map(|r| {
            (
                r.get::<String, _>(0),
                r.get::<String, _>(1),
                r.get::<String, _>(2) == "bytea",
            )
        })
        .collect(),
        Backend::Sqlite => {
            let tables: Vec<String> = sqlx::query(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
            )
            .fetch_all(&mut *conn)
            .await
            .expect("tables")
            .iter()
            .map(|r| r.get::<String, _>(0))
            .collect();
            let mut cols = Vec::new();
            for t in tables {
                // Every column: SQLite is dynamically typed, so each is read as bytes.
                let rows = sqlx::query(&format!("SELECT name FROM pragma_table_info('{t}')"))
                    .fetch_all(&mut *conn)
                    .await
                    .expect("table info");
                for r in rows {
                    cols.push((t.clone(), r.get::<String, _>(0), true));
                }
            }
            cols
        }
    };
    assert!(columns.len() > 10, "found too few columns: {columns:?}");
    let mut cells = Vec::new();
    for (table, column, bytes) in columns {
        let sql = match (backend, bytes) {
            (Backend::Postgres, false) => {
                format!("SELECT \"{column}\"::text FROM \"{table}\" WHERE \"{column}\" IS NOT NULL")
            }
            (Backend::Postgres, true) => {
                format!("SELECT \"{column}\" FROM \"{table}\" WHERE \"{column}\" IS NOT NULL")
            }
            (Backend::Sqlite, _) => format!(
                "SELECT CAST(\"{column}\" AS BLOB) FROM \"{table}\" WHERE \"{column}\" IS NOT NULL"
            ),
        };
        let rows = sqlx::query(&sql)
            .fetch_all(&mut *conn)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        for r in rows {
            let value = if bytes {
                let raw: Vec<u8> = r.try_get(0).unwrap_or_else(|e| panic!("{sql}: {e}"));
                String::from_utf8_lossy(&raw).into_owned()
            } else {
                r.try_get::<String, _>(0)
                    .unwrap_or_else(|e| panic!("{sql}: {e}"))
            };
            cells.push((format!("{table}.{column}"), value));
        }
    }
    cells
}
