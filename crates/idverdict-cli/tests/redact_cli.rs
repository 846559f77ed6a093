//! `idverdict redact --user REF` against the emulator: the user's redactable sessions (and only
//! theirs) are redacted at "Stripe", the others are reported and skipped, and idverdict drops
//! its copy when the `redacted` events arrive at `serve`.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use idverdict::config::{Config, Sources};
use serde_json::Value;
use stripe_emulator::{Chaos, EmulatorConfig};
use tokio::sync::oneshot;

const BIN: &str = env!("CARGO_BIN_EXE_idverdict");
const TOKEN: &str = "redact-cli-api-token-0123456789";
const KEY: &str = "sk_test_redact_cli";
const PATIENCE: Duration = Duration::from_secs(120);

async fn emu_post(http: &reqwest::Client, base: &str, path: &str, form: &[(&str, &str)]) -> Value {
    let res = http
        .post(format!("{base}{path}"))
        .bearer_auth(KEY)
        .form(form)
        .send()
        .await
        .expect("emulator request");
    let status = res.status();
    let body: Value = res.json().await.expect("emulator JSON");
    assert!(status.is_success(), "POST {path}: {status} {body}");
    body
}

async fn emu_get(http: &reqwest::Client, base: &str, path: &str) -> Value {
    http.get(format!("{base}{path}"))
        .bearer_auth(KEY)
        .send()
        .await
        .expect("emulator request")
        .json()
        .await
        .expect("emulator JSON")
}

fn config(
    dir: &std::path::Path,
    db_url: &str,
    listen: SocketAddr,
    secret: &str,
    emu: &str,
) -> Config {
    let vars: Vec<(&str, String)> = vec![
        ("IDVERDICT_LISTEN", listen.to_string()),
        ("STRIPE_WEBHOOK_SECRET", secret.to_string()),
        ("IDVERDICT_API_TOKEN", TOKEN.to_string()),
        ("DATABASE_URL", db_url.to_string()),
        ("IDVERDICT_DATA_DIR", dir.display().to_string()),
        ("STRIPE_API_KEY", KEY.to_string()),
        ("STRIPE_API_BASE", emu.to_string()),
    ];
    let env = move |k: &str| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone());
    Config::load(&Sources {
        file: None,
        env: &env,
    })
    .expect("config")
}

fn run_redact(
    user: &str,
    dir: &std::path::Path,
    db_url: &str,
    emu: &str,
) -> (bool, String, String) {
    let out = std::process::Command::new(BIN)
        .args(["redact", "--user", user])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("STRIPE_API_KEY", KEY)
        .env("STRIPE_API_BASE", emu)
        .env("DATABASE_URL", db_url)
        .env("IDVERDICT_DATA_DIR", dir)
        .output()
        .expect("run idverdict redact");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redact_command_redacts_the_users_sessions_and_idverdict_forgets_them() {
    sqlx::any::install_default_drivers();
    let dir = tempfile::tempdir().expect("temp dir");
    let emu_dir = tempfile::tempdir().expect("temp dir");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let emu = stripe_emulator::spawn(
        listener,
        EmulatorConfig {
            data_dir: emu_dir.path().to_path_buf(),
            time_scale: 0.001,
            processing_delay: Duration::from_millis(50),
            delivery_timeout: Duration::from_secs(10),
            chaos: Chaos::default(),
            public_base_url: None,
        },
    )
    .await
    .expect("emulator");
    let base = emu.base_url().to_string();
    let http = reqwest::Client::builder().no_proxy().build().unwrap();

    let listen = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let url = format!("http://{listen}/webhook");
    let form = [
        ("url", url.as_str()),
        ("enabled_events[0]", "identity.verification_session.created"),
        (
            "enabled_events[1]",
            "identity.verification_session.processing",
        ),
        (
            "enabled_events[2]",
            "identity.verification_session.verified",
        ),
        (
            "enabled_events[3]",
            "identity.verification_session.requires_input",
        ),
        (
            "enabled_events[4]",
            "identity.verification_session.canceled",
        ),
        (
            "enabled_events[5]",
            "identity.verification_session.redacted",
        ),
    ];
    let ep = emu_post(&http, &base, "/v1/webhook_endpoints", &form).await;
    let secret = ep["secret"].as_str().expect("secret").to_string();

    let db_url = format!("sqlite://{}", dir.path().join("idverdict.db").display());
    let app = idverdict::App::build(&config(dir.path(), &db_url, listen, &secret, &base))
        .await
        .expect("build app");
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        app.run_until(async {
            let _ = stopped.await;
        })
        .await
        .expect("serve");
    });

    // jane: one verified, one failed (requires_input), one canceled session; bob: verified.
    let create = |user: &'static str| {
        let (http, base) = (http.clone(), base.clone());
        async move {
            let s = emu_post(
                &http,
                &base,
                "/v1/identity/verification_sessions",
                &[
                    ("type", "document"),
                    ("client_reference_id", user),
                    ("metadata[name]", "Jane Private"),
                ],
            )
            .await;
            s["id"].as_str().expect("id").to_string()
        }
    };
    let helper = |id: &str, action: &str| {
        format!("/v1/test_helpers/identity/verification_sessions/{id}/{action}")
    };
    let verified = create("jane").await;
    emu_post(&http, &base, &helper(&verified, "verify"), &[]).await;
    let failed = create("jane").await;
    emu_post(
        &http,
        &base,
        &helper(&failed, "require_input"),
        &[("last_error[code]", "document_expired")],
    )
    .await;
    let canceled = create("jane").await;
    emu_post(
        &http,
        &base,
        &format!("/v1/identity/verification_sessions/{canceled}/cancel"),
        &[],
    )
    .await;
    let bob = create("bob").await;
    emu_post(&http, &base, &helper(&bob, "verify"), &[]).await;

    // idverdict has all four sessions.
    let get_session = |id: String| {
        let http = http.clone();
        async move {
            let res = http
                .get(format!("http://{listen}/v1/verification_sessions/{id}"))
                .bearer_auth(TOKEN)
                .send()
                .await
                .expect("request");
            let status = res.status().as_u16();
            (status, res.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let deadline = Instant::now() + PATIENCE;
    for (id, status) in [
        (&verified, "verified"),
        (&failed, "requires_input"),
        (&canceled, "canceled"),
        (&bob, "verified"),
    ] {
        loop {
            let (_, s) = get_session(id.clone()).await;
            if s["status"] == status {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{id} never reached {status}: {s}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    let (ok, stdout, stderr) = run_redact("jane", dir.path(), &db_url, &base);
    assert!(ok, "redact failed:\n{stdout}\n{stderr}");
    let line = |id: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(id))
            .unwrap_or_else(|| panic!("no line for {id} in:\n{stdout}"))
            .to_string()
    };
    assert!(line(&verified).contains("redaction requested"), "{stdout}");
    assert!(line(&failed).contains("redaction requested"), "{stdout}");
    assert!(line(&canceled).contains("skipped"), "{stdout}");
    assert!(!stdout.contains(&bob), "{stdout}");
    assert!(stdout.contains("2 redaction(s) requested"), "{stdout}");

    // Stripe (the emulator) redacts; the redacted events reach serve, which forgets.
    let deadline = Instant::now() + PATIENCE;
    for id in [&verified, &failed] {
        loop {
            let s = emu_get(
                &http,
                &base,
                &format!("/v1/identity/verification_sessions/{id}"),
            )
            .await;
            let (_, local) = get_session(id.clone()).await;
            if s["redaction"]["status"] == "redacted" && local["redaction"]["status"] == "redacted"
            {
                assert!(!local.to_string().contains("Jane Private"), "{local}");
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{id} not redacted: {s} / {local}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let b = emu_get(
        &http,
        &base,
        &format!("/v1/identity/verification_sessions/{bob}"),
    )
    .await;
    assert!(b["redaction"].is_null(), "bob untouched: {b}");

    // Again: nothing left to do.
    let (ok, stdout, stderr) = run_redact("jane", dir.path(), &db_url, &base);
    assert!(ok, "second redact failed:\n{stdout}\n{stderr}");
    assert!(line_has(&stdout, &verified, "already redacted"), "{stdout}");
    assert!(stdout.contains("0 redaction(s) requested"), "{stdout}");

    // Without a key it refuses clearly.
    let out = std::process::Command::new(BIN)
        .args(["redact", "--user", "jane"])
        .env_clear()
        .env("IDVERDICT_DATA_DIR", dir.path())
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("STRIPE_API_KEY"));

    let _ = stop.send(());
    task.await.expect("server task");
    emu.shutdown().await.expect("emulator shutdown");
}

fn line_has(stdout: &str, id: &str, text: &str) -> bool {
    stdout
        .lines()
        .any(|l| l.starts_with(id) && l.contains(text))
}
