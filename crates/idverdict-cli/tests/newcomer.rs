//! What a newcomer runs into, through the real binary: one `serve` per data directory, no
//! stray databases, connection flags anywhere, the CLI finding a dev-mode `serve` and its
//! embedded emulator, `trigger` driving real emulator sessions, unknown error codes refused,
//! clear messages, and every documented metric present at start-up.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use idverdict::data_dir::ServeInfo;
use serde_json::Value;
use test_support::{Backend, TestDb};

const BIN: &str = env!("CARGO_BIN_EXE_idverdict");
const SECRET: &str = "whsec_newcomer_test_secret_0123456789";
const TOKEN: &str = "newcomer-test-token-0123456789";

/// `idverdict` with a clean environment: nothing configured unless the test says so.
fn idverdict(cwd: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(cwd);
    for var in [
        "DATABASE_URL",
        "STRIPE_WEBHOOK_SECRET",
        "STRIPE_API_KEY",
        "STRIPE_API_BASE",
        "IDVERDICT_API_TOKEN",
        "IDVERDICT_DATA_DIR",
        "IDVERDICT_CONFIG",
        "IDVERDICT_LISTEN",
        "IDVERDICT_EMULATOR_LISTEN",
        "IDVERDICT_EMULATOR_DATA",
        "IDVERDICT_LOG",
        "NO_COLOR",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// A running `serve` (or `emulate`), killed when dropped; its stderr goes to a file.
struct Running {
    child: Child,
    stderr: PathBuf,
    lines: Vec<String>,
}

impl Running {
    /// Start `cmd` and read stdout until a line starts with `until`.
    fn start(mut cmd: Command, stderr: PathBuf, until: &str) -> Running {
        let err = std::fs::File::create(&stderr).unwrap();
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(err)
            .spawn()
            .expect("spawn");
        let mut reader = BufReader::new(child.stdout.take().unwrap());
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap() == 0 {
                let _ = child.wait();
                panic!(
                    "exited before printing {until:?}: {lines:?}\n{}",
                    std::fs::read_to_string(&stderr).unwrap_or_default()
                );
            }
            lines.push(line.trim().to_string());
            if line.starts_with(until) {
                break;
            }
        }
        // Keep draining stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || for _ in reader.lines() {});
        Running {
            child,
            stderr,
            lines,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// SIGTERM and wait: a clean stop.
    fn stop(mut self) {
        assert!(Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .unwrap()
            .success());
        let status = self.child.wait().unwrap();
        assert!(status.success(), "{status:?}\n{}", self.stderr());
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `serve` in dev mode (nothing configured): the embedded emulator too, both on free ports.
fn dev_serve(cwd: &Path, data: &Path) -> (Running, ServeInfo) {
    let mut cmd = idverdict(cwd);
    cmd.args([
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--emulator-listen",
        "127.0.0.1:0",
        "--data-dir",
    ])
    .arg(data);
    let serve = Running::start(cmd, cwd.join("serve.err"), "  curl -s -H");
    let info: ServeInfo =
        serde_json::from_slice(&std::fs::read(data.join("serve.json")).unwrap()).unwrap();
    assert_eq!(info.pid, serve.pid());
    (serve, info)
}

/// `serve` with a secret and a token (not dev mode).
fn configured_serve(cwd: &Path, envs: &[(&str, &str)]) -> (Running, String) {
    let mut cmd = idverdict(cwd);
    cmd.args(["serve", "--listen", "127.0.0.1:0"])
        .env("STRIPE_WEBHOOK_SECRET", SECRET)
        .env("IDVERDICT_API_TOKEN", TOKEN);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let serve = Running::start(cmd, cwd.join("serve.err"), "webhook receiver listening on ");
    let base = serve.lines[0]
        .trim_start_matches("webhook receiver listening on ")
        .trim_end_matches("/webhook")
        .to_string();
    (serve, base)
}

/// `idverdict emulate` on a free port; its base URL.
fn emulator(cwd: &Path, data: &Path) -> (Running, String) {
    let mut cmd = idverdict(cwd);
    cmd.args(["emulate", "--listen", "127.0.0.1:0", "--data"])
        .arg(data);
    let emu = Running::start(cmd, cwd.join("emulate.err"), "emulator listening on ");
    let base = emu.lines[0]
        .trim_start_matches("emulator listening on ")
        .to_string();
    (emu, base)
}

async fn get_json(url: &str, token: Option<&str>) -> (u16, Value) {
    let mut req = reqwest::Client::new().get(url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// Poll (bounded) until the user is in `state`.
async fn wait_for_state(api: &str, token: &str, user: &str, state: &str) -> Value {
    let mut last = Value::Null;
    for _ in 0..300 {
        let (status, body) = get_json(&format!("{api}/v1/users/{user}"), Some(token)).await;
        if status == 200 && body["state"] == state {
            return body;
        }
        last = body;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("user {user} never reached {state}: {last}");
}

#[test]
fn a_second_serve_or_emulator_on_one_data_dir_is_refused_naming_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (first, _) = dev_serve(dir.path(), &data);

    let out = idverdict(dir.path())
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--emulator-listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(&data)
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(!out.status.success(), "{stdout}{stderr}");
    assert!(
        stderr.contains(&format!("`idverdict serve` (PID {})", first.pid())),
        "{stderr}"
    );
    // Nothing was printed: no second set of credentials, no second emulator.
    assert!(stdout.is_empty(), "{stdout}");

    // The embedded emulator's state is taken too.
    let out = idverdict(dir.path())
        .args(["emulate", "--listen", "127.0.0.1:0", "--data"])
        .arg(data.join("emulator"))
        .output()
        .unwrap();
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(
        stderr.contains(&format!("(PID {})", first.pid())),
        "{stderr}"
    );

    // And a standalone emulator holds its own directory.
    let emu_dir = dir.path().join("emu");
    let (emu, _) = emulator(dir.path(), &emu_dir);
    let out = idverdict(dir.path())
        .args(["emulate", "--listen", "127.0.0.1:0", "--data"])
        .arg(&emu_dir)
        .output()
        .unwrap();
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(
        stderr.contains(&format!("`idverdict emulate` (PID {})", emu.pid())),
        "{stderr}"
    );

    // Once the first stops, the directory is free again.
    first.stop();
    let (again, _) = dev_serve(dir.path(), &data);
    again.stop();
    emu.stop();
}

#[tokio::test]
async fn commands_refuse_a_missing_or_uninitialised_database_and_create_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let scratch = dir.path();
    for args in [
        vec!["reactions", "list"],
        vec!["reactions", "show", "rx_x"],
        vec!["reactions", "redeliver", "--all-exhausted"],
        vec![
            "reconcile",
            "--api-key",
            "sk_test_x",
            "--api-base",
            "http://127.0.0.1:9",
        ],
        vec![
            "redact",
            "--user",
            "u",
            "--api-key",
            "sk_test_x",
            "--api-base",
            "http://127.0.0.1:9",
        ],
    ] {
        let out = idverdict(scratch).args(&args).output().unwrap();
        let (_, stderr) = text(&out);
        assert!(!out.status.success(), "{args:?}");
        assert!(
            stderr.contains("no idverdict database in the data directory .idverdict")
                && stderr.contains("idverdict.db does not exist"),
            "{args:?}: {stderr}"
        );
    }
    assert!(
        std::fs::read_dir(scratch).unwrap().next().is_none(),
        "something was created in the scratch directory"
    );

    // PostgreSQL: a database without idverdict's schema is not initialised, and stays empty.
    let db = TestDb::named(Backend::Postgres, "idv_newcomer").await;
    let out = idverdict(scratch)
        .args(["reactions", "list"])
        .env("DATABASE_URL", &db.url)
        .output()
        .unwrap();
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(
        stderr.contains("DATABASE_URL postgres://")
            && stderr.contains("is not an initialised idverdict database"),
        "{stderr}"
    );
    // `migrate` creates it; then the same command works, and `--json` with nothing is `[]`.
    let out = idverdict(scratch)
        .args(["migrate"])
        .env("DATABASE_URL", &db.url)
        .output()
        .unwrap();
    assert!(out.status.success(), "{:?}", text(&out));
    let out = idverdict(scratch)
        .args(["reactions", "list", "--json"])
        .env("DATABASE_URL", &db.url)
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(
        serde_json::from_str::<Value>(&stdout).unwrap(),
        Value::Array(vec![])
    );
    // No channel configured: said so (on stderr, so the JSON stays clean).
    assert!(
        stderr.contains("no reaction channel is configured"),
        "{stderr}"
    );
}

#[test]
fn connection_flags_work_before_and_after_the_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    let (emu, base) = emulator(dir.path(), &dir.path().join("emu"));
    let flags = ["--api-key", "sk_test_flags", "--api-base", base.as_str()];

    let mut after = vec![
        "endpoints",
        "create",
        "--url",
        "http://127.0.0.1:1/hook",
        "--events",
        "*",
    ];
    after.extend(flags);
    let out = idverdict(dir.path()).args(&after).output().unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("signing secret"), "{stdout}");
    // `*` leaves out `redacted`, and the operator is told.
    assert!(
        stderr.contains(
            "`*` subscribes to every event except identity.verification_session.redacted"
        ),
        "{stderr}"
    );

    let mut before = vec!["endpoints"];
    before.extend(flags);
    before.push("list");
    let mut list_after = vec!["endpoints", "list"];
    list_after.extend(flags);
    for args in [before, list_after] {
        let out = idverdict(dir.path()).args(&args).output().unwrap();
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "{args:?}: {stderr}");
        assert!(stdout.contains("http://127.0.0.1:1/hook"), "{stdout}");
    }
    emu.stop();
}

#[tokio::test]
async fn a_dev_mode_serve_is_found_by_endpoints_reconcile_redact_and_trigger() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join(".idverdict");
    let (serve, info) = dev_serve(dir.path(), &data);
    let emulator = info.emulator.clone().expect("dev mode runs the emulator");

    // From the directory serve runs in, nothing to pass: the embedded emulator is found.
    let out = idverdict(dir.path())
        .args(["endpoints", "list"])
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains(&info.webhook_url), "{stdout}");
    assert!(stderr.contains(&emulator.url), "{stderr}");

    let out = idverdict(dir.path())
        .args(["trigger", "--flow", "verified", "--user", "found_user"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{:?}", text(&out));

    let out = idverdict(dir.path()).args(["reconcile"]).output().unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stdout.contains(&format!("from {}", emulator.url)) && stdout.contains("0 new"),
        "{stdout}"
    );
    // Reconciliation prints RFC 3339, not a unix number.
    assert!(stdout.contains("T") && stdout.contains("Z)"), "{stdout}");

    let out = idverdict(dir.path())
        .args(["redact", "--user", "found_user", "--dry-run"])
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("would request redaction"), "{stdout}");

    // A clean stop removes serve.json: nothing is found any more, and the CLI says why.
    serve.stop();
    assert!(!data.join("serve.json").exists());
    let out = idverdict(dir.path())
        .args(["endpoints", "list"])
        .output()
        .unwrap();
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(stderr.contains("no serve runs there"), "{stderr}");

    // A killed serve leaves serve.json behind; the lock shows it is stale.
    let (mut killed, _) = dev_serve(dir.path(), &data);
    killed.child.kill().unwrap();
    let _ = killed.child.wait();
    assert!(data.join("serve.json").exists());
    let out = idverdict(dir.path())
        .args(["endpoints", "list"])
        .output()
        .unwrap();
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(stderr.contains("stale"), "{stderr}");
    let out = idverdict(dir.path())
        .args(["trigger", "verified"])
        .output()
        .unwrap();
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(stderr.contains("no longer running"), "{stderr}");
}

/// The README's loop: three triggered failures, a review that allows one more try, and a
/// new session through the API — against real emulator sessions, so fetch-latest finds every
/// session and session creation works.
#[tokio::test]
async fn trigger_drives_the_embedded_emulator_so_fetch_latest_and_session_creation_work() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join(".idverdict");
    let (serve, info) = dev_serve(dir.path(), &data);
    let token = std::fs::read_to_string(data.join("dev-api-token")).unwrap();
    let api = info.api_url.clone();

    for _ in 0..3 {
        let out = idverdict(dir.path())
            .args([
                "trigger",
                "--flow",
                "failed:document_expired",
                "--user",
                "loop_user",
            ])
            .output()
            .unwrap();
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "{stdout}{stderr}");
        // Each event went through the emulator to serve's endpoint and was accepted.
        assert_eq!(stdout.matches(": 200").count(), 3, "{stdout}");
        assert!(stdout.contains("identity.verification_session.requires_input"));
    }
    let user = wait_for_state(&api, &token, "loop_user", "needs_review").await;
    assert_eq!(user["failed_attempts"], 3, "{user}");

    let client = reqwest::Client::new();
    let res = client
        .post(format!("{api}/v1/reviews/loop_user"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"action": "allow_retry", "reviewer": "ops"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let res = client
        .post(format!("{api}/v1/users/loop_user/verification_sessions"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let body: Value = res.json().await.unwrap();
    assert!(status == 200 || status == 201, "{status}: {body}");
    assert!(
        body["url"]
            .as_str()
            .is_some_and(|u| u.starts_with(&info.emulator.unwrap().url)),
        "{body}"
    );

    // A single event on an existing session: a resubmission that verifies it.
    let session = body["id"].as_str().unwrap().to_string();
    let out = idverdict(dir.path())
        .args(["trigger", "verified", "--session", &session])
        .output()
        .unwrap();
    assert!(out.status.success(), "{:?}", text(&out));
    wait_for_state(&api, &token, "loop_user", "verified").await;

    let stderr = serve.stderr();
    assert!(
        !stderr.contains("could not fetch the latest session"),
        "fetch-latest failed for a triggered session:\n{stderr}"
    );
    serve.stop();
}

#[tokio::test]
async fn unknown_error_codes_are_refused_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let (serve, base) = configured_serve(dir.path(), &[]);
    let url = format!("{base}/webhook");
    let trigger = |extra: &[&str]| {
        let mut args = vec![
            "trigger",
            "--flow",
            "failed:document_expird",
            "--user",
            "typo_user",
            "--url",
            &url,
            "--secret",
            SECRET,
        ];
        args.extend(extra);
        idverdict(dir.path()).args(&args).output().unwrap()
    };
    let out = trigger(&[]);
    let (stdout, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(stdout.is_empty(), "nothing may be sent: {stdout}");
    assert!(
        stderr.contains("unknown error code `document_expird`")
            && stderr.contains("document_expired")
            && stderr.contains("--allow-unknown-code"),
        "{stderr}"
    );
    let out = trigger(&["--allow-unknown-code"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(stdout.matches("-> 200").count(), 3, "{stdout}");
    serve.stop();
}

#[tokio::test]
async fn messages_a_newcomer_can_act_on() {
    let dir = tempfile::tempdir().unwrap();

    // A port in use: said once, with the way out, before anything is created.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let fresh = dir.path().join("never-created");
    let out = idverdict(dir.path())
        .args(["serve", "--listen", &addr, "--data-dir"])
        .arg(&fresh)
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(
        stderr.contains(&format!("{addr} is already in use")) && stderr.contains("--listen"),
        "{stderr}"
    );
    assert_eq!(stderr.matches("in use").count(), 1, "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(!fresh.exists(), "the data directory was created");
    drop(taken);

    // A missing configuration file: the cause once.
    let out = idverdict(dir.path())
        .args(["serve", "--config", "missing.toml"])
        .output()
        .unwrap();
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert_eq!(
        stderr.matches("No such file or directory").count(),
        1,
        "{stderr}"
    );

    // A secret without a token: warned at start-up, naming the setting; no colour in a
    // log that is not a terminal; the backend named plainly.
    let (serve, base) = configured_serve(dir.path(), &[("IDVERDICT_API_TOKEN", "")]);
    // A delivery signed with another secret: warned about, and visible in /readyz.
    let body = br#"{"id":"evt_1","object":"event"}"#;
    let res = reqwest::Client::new()
        .post(format!("{base}/webhook"))
        .header(
            "Stripe-Signature",
            stripe_webhook::sign(
                body,
                "whsec_some_other_secret",
                idverdict::clock::now_secs(),
            ),
        )
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let (status, ready) = get_json(&format!("{base}/readyz"), None).await;
    assert_eq!(status, 200);
    assert_eq!(ready["webhooks"]["signature_mismatches"], 1, "{ready}");
    assert!(
        ready["warnings"][0]
            .as_str()
            .is_some_and(|w| w.contains("STRIPE_WEBHOOK_SECRET")),
        "{ready}"
    );
    let mut stderr = String::new();
    for _ in 0..100 {
        stderr = serve.stderr();
        if stderr.contains("no configured webhook secret matched") {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        stderr.contains("WARN") && stderr.contains("no configured webhook secret matched"),
        "{stderr}"
    );
    assert!(
        stderr.contains("`api_token` (IDVERDICT_API_TOKEN)") && stderr.contains("401"),
        "{stderr}"
    );
    assert!(
        !stderr.contains('\u{1b}'),
        "ANSI escapes in a log file: {stderr:?}"
    );
    assert!(
        stderr.contains("backend=\"sqlite\"") && !stderr.contains("Some("),
        "{stderr}"
    );
    serve.stop();

    // The redeliver usage shows both ways of calling it.
    let out = idverdict(dir.path())
        .args(["reactions", "redeliver"])
        .output()
        .unwrap();
    let (_, stderr) = text(&out);
    assert!(
        stderr.contains("redeliver <ID|--all-exhausted>"),
        "{stderr}"
    );

    // A callback secret made by the CLI, in the form the configuration takes.
    let out = idverdict(dir.path())
        .args(["secrets", "generate", "callback"])
        .output()
        .unwrap();
    let (stdout, _) = text(&out);
    let secret = stdout.trim();
    assert!(idverdict::config::decode_secret(secret).is_ok(), "{secret}");
}

/// The README's metrics table, read from the README itself.
fn documented_series() -> Vec<(String, String)> {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let start = readme
        .find(idverdict::metrics::README_BEGIN)
        .expect("metrics table in README");
    let end = readme[start..]
        .find(idverdict::metrics::README_END)
        .unwrap()
        + start;
    readme[start..end]
        .lines()
        .filter_map(|l| {
            let mut cells = l.split('|').map(str::trim).skip(1);
            let name = cells
                .next()?
                .strip_prefix('`')?
                .strip_suffix('`')?
                .to_string();
            let kind = cells.next()?.to_string();
            Some((name, kind))
        })
        .collect()
}

#[tokio::test]
async fn every_documented_metric_is_there_at_start_up_with_its_help() {
    let dir = tempfile::tempdir().unwrap();
    let (serve, base) = configured_serve(dir.path(), &[]);
    let page = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let series = documented_series();
    assert!(series.len() >= 19, "{series:?}");
    for (name, kind) in &series {
        assert!(
            page.lines()
                .any(|l| l.starts_with(&format!("# HELP {name} ")) && l.len() > name.len() + 10),
            "no HELP for {name}:\n{page}"
        );
        assert!(
            page.lines().any(|l| l == format!("# TYPE {name} {kind}")),
            "{name} is not a {kind}:\n{page}"
        );
        assert!(
            page.lines()
                .any(|l| !l.starts_with('#') && l.starts_with(name.as_str())),
            "no sample of {name}:\n{page}"
        );
    }
    // Nothing undocumented either.
    for line in page.lines().filter(|l| l.starts_with("# TYPE ")) {
        let name = line.split_whitespace().nth(2).unwrap();
        assert!(
            series.iter().any(|(n, _)| n == name),
            "{name} is not in the README"
        );
    }
    serve.stop();
}

#[tokio::test]
async fn backup_copies_the_sqlite_database_while_serve_runs() {
    use sqlx::{Connection, Row};
    let dir = tempfile::tempdir().unwrap();
    let (serve, base) = configured_serve(dir.path(), &[]);
    let out = idverdict(dir.path())
        .args([
            "trigger",
            "--flow",
            "verified",
            "--user",
            "kept_user",
            "--url",
        ])
        .arg(format!("{base}/webhook"))
        .args(["--secret", SECRET])
        .output()
        .unwrap();
    assert!(out.status.success(), "{:?}", text(&out));

    let copy_dir = dir.path().join("restored");
    std::fs::create_dir(&copy_dir).unwrap();
    let copy = copy_dir.join("idverdict.db");
    let out = idverdict(dir.path())
        .args(["backup", "--to"])
        .arg(&copy)
        .output()
        .unwrap();
    assert!(out.status.success(), "{:?}", text(&out));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&copy).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "{mode:o}");
    }
    // Never over an existing file.
    let out = idverdict(dir.path())
        .args(["backup", "--to"])
        .arg(&copy)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(text(&out).1.contains("already exists"));
    serve.stop();

    // The copy is a complete database: the three events, and the commands work on it.
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(&format!("sqlite://{}?mode=ro", copy.display()))
        .await
        .unwrap();
    let n: i64 = sqlx::query("SELECT COUNT(*) AS n FROM events")
        .fetch_one(&mut conn)
        .await
        .unwrap()
        .try_get("n")
        .unwrap();
    assert_eq!(n, 3);
    let out = idverdict(dir.path())
        .args(["reactions", "list", "--data-dir"])
        .arg(&copy_dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{:?}", text(&out));
}
