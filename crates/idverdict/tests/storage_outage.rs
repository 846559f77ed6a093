//! The database goes away under load and comes back. PostgreSQL: a private server the test
//! starts itself (never the shared one on 5432) is stopped for 30 s while deliveries keep
//! arriving. SQLite: the database lives on a small tmpfs that is filled to the last byte (disk
//! full), then freed. During the outage every delivery is answered 503 (Stripe retries) and
//! `/readyz` says not ready; afterwards the same `serve`, never restarted, acknowledges again,
//! reports ready, and every event it acknowledged — before, during or after — is stored and
//! applied. The test retries refused deliveries as Stripe would, so every event ends applied.
//!
//! Waits are bounded polls; the bounds only keep a broken build from hanging the suite.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use idverdict::config::{Config, Sources};
use idverdict::synth::{self, Kind, Spec};

/// How long PostgreSQL stays down.
const PG_OUTAGE: Duration = Duration::from_secs(30);
/// How long the SQLite file system stays full.
const DISK_FULL: Duration = Duration::from_secs(10);
const PATIENCE: Duration = Duration::from_secs(120);
/// Deliveries in flight at once.
const SENDERS: usize = 4;

// ---------------------------------------------------------------------------------------------
// A private PostgreSQL server.

struct PrivatePg {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    /// Root cannot run PostgreSQL: the server runs as `postgres` through runuser.
    as_postgres: bool,
}

impl PrivatePg {
    fn start() -> PrivatePg {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL's binaries in /usr/lib/postgresql")
            .flatten()
            .map(|e| e.path().join("bin"))
            .filter(|p| p.join("pg_ctl").exists())
            .max()
            .expect("a PostgreSQL version with pg_ctl");
        let as_postgres = is_root();
        let dir = tempfile::tempdir().expect("temp dir");
        if as_postgres {
            chown_postgres(dir.path());
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let pg = PrivatePg {
            bin,
            dir,
            port,
            as_postgres,
        };
        let data = pg.data();
        pg.run(
            "initdb",
            &["-D", &data, "-U", "postgres", "-A", "trust", "--no-sync"],
        );
        pg.ctl_start();
        pg
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    fn run(&self, tool: &str, args: &[&str]) {
        let program = self.bin.join(tool);
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&program);
            c
        } else {
            Command::new(&program)
        };
        let out = cmd.args(args).output().expect(tool);
        assert!(
            out.status.success(),
            "{tool} {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn ctl_start(&self) {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("server.log").display().to_string();
        self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data(),
                "-o",
                &options,
                "-l",
                &log,
                "-w",
                "start",
            ],
        );
    }

    fn ctl_stop(&self) {
        self.run("pg_ctl", &["-D", &self.data(), "-m", "fast", "-w", "stop"]);
    }
}

impl Drop for PrivatePg {
    fn drop(&mut self) {
        let _ = Command::new(self.bin.join("pg_ctl"))
            .args(["-D", &self.data(), "-m", "immediate", "stop"])
            .output();
        if self.as_postgres {
            let _ = Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(self.bin.join("pg_ctl"))
                .args(["-D", &self.data(), "-m", "immediate", "stop"])
                .output();
        }
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn chown_postgres(path: &Path) {
    let ok = Command::new("chown")
        .args(["-R", "postgres:postgres"])
        .arg(path)
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(ok, "chown to postgres");
}

// ---------------------------------------------------------------------------------------------
// A small file system for SQLite that can be filled up.

struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// `None` where mounting is not allowed (not root).
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().expect("temp dir");
        let ok = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir.path())
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        ok.then_some(Tmpfs { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Write a file until the file system has no byte left.
    fn fill(&self, name: &str) -> PathBuf {
        use std::io::Write;
        let path = self.path().join(name);
        let mut file = std::fs::File::create(&path).expect("filler");
        let chunk = vec![0u8; 64 * 1024];
        while file.write_all(&chunk).is_ok() {}
        let mut byte = [0u8; 1];
        while file.write_all(&byte).is_ok() {
            byte[0] = 1;
        }
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

// ---------------------------------------------------------------------------------------------
// Load: signed deliveries, each event retried until acknowledged (as Stripe does).

#[derive(Default)]
struct Log {
    /// Every answer: (when, status).
    answers: Vec<(Instant, u16)>,
    acknowledged: BTreeSet<String>,
    /// The user of each acknowledged event.
    users: BTreeMap<String, String>,
}

/// Event number `i`: (event id, user, signed-to-be body). Ids are random: call once per event.
fn event_for(i: usize) -> (String, String, Vec<u8>) {
    let user = format!("user_out{i}");
    let mut spec = Spec::new(Kind::Verified, &format!("vs_1out{i:05}"), now() - 60);
    spec.user_ref = Some(user.clone());
    (spec.event_id.clone(), user, synth::event_bytes(&spec))
}

/// Deliver events `from..` until `stop`, each one again after a refusal.
async fn load(
    base: String,
    first: usize,
    stride: usize,
    log: Arc<Mutex<Log>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
) {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let mut i = first;
    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
        let (id, user, body) = event_for(i);
        loop {
            let header = stripe_webhook::sign(&body, SECRET, now());
            let status = match http
                .post(format!("{base}/webhook"))
                .header("content-type", "application/json")
                .header("Stripe-Signature", header)
                .body(body.clone())
                .send()
                .await
            {
                Ok(res) => res.status().as_u16(),
                Err(_) => 0,
            };
            {
                let mut l = log.lock().unwrap();
                l.answers.push((Instant::now(), status));
                if status == 200 {
                    l.acknowledged.insert(id.clone());
                    l.users.insert(id.clone(), user.clone());
                }
            }
            if status == 200 {
                break;
            }
            // A refused event is retried; past the stop it is left to Stripe's next retry.
            if stop.load(std::sync::atomic::Ordering::SeqCst) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        i += stride;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn wait_until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + PATIENCE;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn readyz(http: &reqwest::Client, base: &str) -> u16 {
    match http
        .get(format!("{base}/readyz"))
        .timeout(Duration::from_secs(30))
        .send()
        .await
    {
        Ok(res) => res.status().as_u16(),
        Err(_) => 0,
    }
}

fn config_for(url: &str, data_dir: &Path) -> Config {
    let url = url.to_string();
    let data_dir = data_dir.display().to_string();
    let env = move |k: &str| -> Option<String> {
        match k {
            "IDVERDICT_LISTEN" => Some("127.0.0.1:0".into()),
            "STRIPE_WEBHOOK_SECRET" => Some(SECRET.into()),
            "IDVERDICT_API_TOKEN" => Some(TOKEN.into()),
            "DATABASE_URL" => Some(url.clone()),
            "IDVERDICT_DATA_DIR" => Some(data_dir.clone()),
            _ => None,
        }
    };
    Config::load(&Sources {
        file: None,
        env: &env,
    })
    .expect("config")
}

// ---------------------------------------------------------------------------------------------

async fn storage_goes_away_and_comes_back(backend: Backend) {
    // Either the private server, or the tmpfs; kept alive for the whole test.
    let mut pg = None;
    let mut fs = None;
    let data_dir = tempfile::tempdir().unwrap();
    let url = match backend {
        Backend::Postgres => {
            let server = PrivatePg::start();
            server.run(
                "createdb",
                &[
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &server.port.to_string(),
                    "-U",
                    "postgres",
                    "outage",
                ],
            );
            let url = server.url("outage");
            pg = Some(server);
            url
        }
        Backend::Sqlite => {
            let Some(mounted) = Tmpfs::mount("8m") else {
                eprintln!("storage_outage::sqlite skipped: mounting a tmpfs needs root");
                return;
            };
            let url = format!("sqlite://{}/idverdict.db", mounted.path().display());
            fs = Some(mounted);
            url
        }
    };
    let app = TestApp::start(&config_for(&url, data_dir.path())).await;
    let base = format!("http://{}", app.addr);
    let http = reqwest::Client::new();

    let log = Arc::new(Mutex::new(Log::default()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let senders: Vec<_> = (0..SENDERS)
        .map(|s| tokio::spawn(load(base.clone(), s, SENDERS, log.clone(), stop.clone())))
        .collect();
    let acked = |log: &Arc<Mutex<Log>>| log.lock().unwrap().acknowledged.len();
    wait_until("deliveries acknowledged before the outage", || {
        let n = acked(&log);
        async move { n >= 40 }
    })
    .await;

    // ---- the outage
    let filler = match (&pg, &fs) {
        (Some(server), _) => {
            server.ctl_stop();
            None
        }
        (_, Some(mounted)) => Some(mounted.fill("filler")),
        _ => unreachable!(),
    };
    let down_at = Instant::now();
    wait_until("a delivery refused with 503 during the outage", || {
        let seen = log
            .lock()
            .unwrap()
            .answers
            .iter()
            .any(|(at, s)| *at > down_at && *s == 503);
        async move { seen }
    })
    .await;
    wait_until("/readyz not ready during the outage", || {
        let (http, base) = (http.clone(), base.clone());
        async move { readyz(&http, &base).await == 503 }
    })
    .await;
    let outage = if pg.is_some() { PG_OUTAGE } else { DISK_FULL };
    tokio::time::sleep(outage.saturating_sub(down_at.elapsed())).await;
    // Still refusing (and still not ready) at the end of it.
    assert_eq!(
        readyz(&http, &base).await,
        503,
        "ready while storage is down"
    );

    // ---- back
    match (&pg, &filler) {
        (Some(server), _) => server.ctl_start(),
        (_, Some(filler)) => std::fs::remove_file(filler).expect("free the disk"),
        _ => unreachable!(),
    }
    let up_at = Instant::now();
    wait_until("/readyz ready again without a restart", || {
        let (http, base) = (http.clone(), base.clone());
        async move { readyz(&http, &base).await == 200 }
    })
    .await;
    wait_until("deliveries acknowledged again", || {
        let seen = log
            .lock()
            .unwrap()
            .answers
            .iter()
            .filter(|(at, s)| *at > up_at && *s == 200)
            .count();
        async move { seen >= 20 }
    })
    .await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    for s in senders {
        s.await.expect("sender");
    }

    // Every answer was an acknowledgement or a 503: no 5xx of another kind, no timeouts, no
    // 4xx for a storage problem.
    let statuses: BTreeMap<u16, usize> =
        log.lock()
            .unwrap()
            .answers
            .iter()
            .fold(BTreeMap::new(), |mut m, (_, s)| {
                *m.entry(*s).or_default() += 1;
                m
            });
    assert!(
        statuses.keys().all(|s| *s == 200 || *s == 503),
        "answers: {statuses:?}"
    );
    assert!(statuses.get(&503).is_some_and(|n| *n > 0), "{statuses:?}");

    // Nothing acknowledged is lost: stored, and applied by the processor that lived through
    // the outage.
    let store = idverdict::store::Store::connect(&url)
        .await
        .expect("connect");
    drain(&store).await;
    let acknowledged = log.lock().unwrap().acknowledged.clone();
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&url)
        .await
        .expect("raw connection");
    let stored: BTreeSet<String> = sqlx::query_scalar::<_, String>("SELECT id FROM events")
        .fetch_all(&mut conn)
        .await
        .expect("event ids")
        .into_iter()
        .collect();
    let lost: Vec<&String> = acknowledged.difference(&stored).collect();
    assert!(lost.is_empty(), "acknowledged but not stored: {lost:?}");
    let _ = sqlx::Connection::close(conn).await;
    // Every acknowledged event decided its user (each is a verified session of its own).
    let users: Vec<String> = log.lock().unwrap().users.values().cloned().collect();
    for user in users.iter().step_by(5) {
        let (status, u) = app.get(&format!("/v1/users/{user}")).await;
        assert_eq!(
            (status, u["state"].as_str()),
            (200, Some("verified")),
            "{u}"
        );
    }
    store.close().await;
    app.stop().await;
    drop(pg);
    drop(fs);
}
both_backends!(storage_goes_away_and_comes_back);
