//! `idverdict operators` and `idverdict audit export` as an admin runs them, and the dev-mode
//! console login `serve` prints.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_idverdict");

fn idverdict(data: &str, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
    let mut child = Command::new(BIN)
        .args(args)
        .args(["--data-dir", data])
        .env_remove("DATABASE_URL")
        .env_remove("IDVERDICT_CONFIG")
        .env_remove("IDVERDICT_DATA_DIR")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn operators_are_managed_and_every_change_is_in_the_audit_export() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    // Like every command but `serve` and `migrate`, `operators` needs the database to exist.
    let (ok, _, err) = idverdict(data, &["operators", "list"], None);
    assert!(!ok && err.contains("idverdict migrate"), "{err}");
    assert!(idverdict(data, &["migrate"], None).0);
    let add = |email: &str, role: &str, password: &str| {
        idverdict(
            data,
            &[
                "operators",
                "add",
                email,
                "--role",
                role,
                "--password-stdin",
            ],
            Some(&format!("{password}\n")),
        )
    };
    let (ok, out, err) = add("Rita@Example.com", "reviewer", "a long enough password");
    assert!(ok, "{err}");
    assert!(out.contains("added rita@example.com (reviewer)"), "{out}");
    // Refusals: a taken email, a short password, a bad email, an unknown role.
    let (ok, _, err) = add("rita@example.com", "admin", "another long password");
    assert!(!ok && err.contains("exists already"), "{err}");
    let (ok, _, err) = add("sam@example.com", "viewer", "short");
    assert!(!ok && err.contains("at least 12 characters"), "{err}");
    let (ok, _, err) = add("not-an-email", "viewer", "a long enough password");
    assert!(!ok && err.contains("name@example.com"), "{err}");
    let (ok, _, _) = add("sam@example.com", "root", "a long enough password");
    assert!(!ok);

    let (ok, out, _) = idverdict(data, &["operators", "list", "--json"], None);
    assert!(ok);
    let listed: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["email"], "rita@example.com");
    assert_eq!(listed[0]["role"], "reviewer");
    assert!(
        !out.contains("argon2") && listed[0].get("password_hash").is_none(),
        "the hash is never printed"
    );

    let (ok, _, err) = idverdict(
        data,
        &[
            "operators",
            "passwd",
            "rita@example.com",
            "--password-stdin",
        ],
        Some("a brand new password\n"),
    );
    assert!(ok, "{err}");
    let (ok, _, _) = idverdict(data, &["operators", "disable", "rita@example.com"], None);
    assert!(ok);
    let (_, out, _) = idverdict(data, &["operators", "list"], None);
    assert!(out.contains("disabled"), "{out}");
    let (ok, _, err) = idverdict(data, &["operators", "disable", "nobody@example.com"], None);
    assert!(!ok && err.contains("no operator"), "{err}");

    let (ok, out, err) = idverdict(data, &["audit", "export"], None);
    assert!(ok, "{err}");
    let actions: Vec<String> = out
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            assert_eq!(v["target"], "rita@example.com");
            assert_eq!(v["operator"], "cli");
            v["action"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(
        actions,
        ["operator.add", "operator.password", "operator.disable"]
    );
    let (ok, out, _) = idverdict(data, &["audit", "export", "--since", "1h"], None);
    assert!(ok && out.lines().count() == 3, "{out}");
    let (ok, _, err) = idverdict(data, &["audit", "export", "--since", "soon"], None);
    assert!(!ok && err.contains("--since"), "{err}");
}

#[tokio::test]
async fn dev_mode_prints_a_console_login_that_works() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut child = Command::new(BIN)
        .args(["serve", "--no-emulator"])
        .env("IDVERDICT_LISTEN", "127.0.0.1:0")
        .env("IDVERDICT_DATA_DIR", &data)
        .env_remove("DATABASE_URL")
        .env_remove("STRIPE_WEBHOOK_SECRET")
        .env_remove("IDVERDICT_API_TOKEN")
        .env_remove("STRIPE_API_KEY")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut console_line = String::new();
    for _ in 0..6 {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        if line.starts_with("Operator console on ") {
            console_line = line.trim().to_string();
            break;
        }
    }
    std::thread::spawn(move || for _ in reader.lines() {});
    // "Operator console on http://127.0.0.1:PORT/console (log in as admin@localhost with password P)"
    let url = console_line
        .split_whitespace()
        .nth(3)
        .expect("the console URL")
        .to_string();
    let password = console_line
        .rsplit(' ')
        .next()
        .unwrap()
        .trim_end_matches(')')
        .to_string();
    assert!(console_line.contains("admin@localhost"), "{console_line}");
    let stored = std::fs::read_to_string(data.join("dev-console-password")).unwrap();
    assert_eq!(stored.trim(), password);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data.join("dev-console-password"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "owner-only");
    }

    // Log in with it (the form's token from its page and cookie).
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let form = http.get(format!("{url}/login")).send().await.unwrap();
    let cookie = form.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let html = form.text().await.unwrap();
    let marker = "name=\"csrf_token\" value=\"";
    let start = html.find(marker).unwrap() + marker.len();
    let token = &html[start..start + html[start..].find('"').unwrap()];
    let origin = url.trim_end_matches("/console").to_string();
    let res = http
        .post(format!("{url}/login"))
        .header("cookie", cookie)
        .header("origin", origin)
        .form(&[
            ("email", "admin@localhost"),
            ("password", password.as_str()),
            ("csrf_token", token),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/console");
    let session = res.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(session.contains("HttpOnly") && session.contains("SameSite=Strict"));
    child.kill().unwrap();
    let _ = child.wait();
}
