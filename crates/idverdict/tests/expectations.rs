//! Verified outputs compared with what the app expected, end to end on both backends: the app
//! asks idverdict for a session with `expected` (a name, a date of birth, a minimum age,
//! accepted countries, an email, a phone), the emulator verifies the session showing a chosen
//! person, and idverdict retrieves the verified outputs (the date of birth only with a
//! restricted key), compares, and decides. Afterwards every text and blob cell of every table,
//! and every log line the service wrote, is searched for the expected and verified values:
//! none may be there.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use common::*;
use stripe_emulator::EmulatorConfig;

const EXPECTATIONS_KEY: &str = "test-expectations-key-0123456789-abcdef";

/// Everything the service logs, from every test of this binary.
fn logs() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let sink = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(
                "trace,stripe_emulator=off,hyper=off,hyper_util=off,h2=off,rustls=off,reqwest=off",
            ))
            .with_writer(move || LogWriter(sink.clone()))
            .with_ansi(false)
            .finish();
        let _ = tracing::subscriber::set_global_default(subscriber);
        buffer
    })
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The person the app expects (and, unless a case changes a field, the one verified).
const FIRST: &str = "Zéphyrine";
const LAST: &str = "Quackenbush-Oyelaran";
const EMAIL: &str = "zephyrine.private@example.org";
const PHONE: &str = "+33698765432";
/// Values that must not be anywhere afterwards: as sent and as normalised (the dates as the
/// forms idverdict could have written them).
const PERSONAL: &[&str] = &[
    "Zéphyrine",
    "zephyrine",
    "Zephyrine",
    "Quackenbush",
    "quackenbush",
    "Oyelaran",
    "oyelaran",
    "zephyrine.private",
    "698765432",
    "1987-11-17",
    "1987-11-18",
    "17/11/1987",
    "\"year\":1987",
    "Mallory",
    "mallory",
    "kappa.other@example.org",
    "611111111",
];

async fn start_emulator() -> (stripe_emulator::EmulatorHandle, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let emu = stripe_emulator::spawn(
        listener,
        EmulatorConfig {
            data_dir: dir.path().to_path_buf(),
            time_scale: 0.001,
            processing_delay: Duration::from_millis(10),
            ..EmulatorConfig::default()
        },
    )
    .await
    .unwrap();
    (emu, dir)
}

/// The service on the emulator with `key`, reconciling every second, with a policy file.
async fn start_app(db: &TestDb, emulator: &str, key: &str, policy: &str) -> TestApp {
    let file = db.dir.path().join("policy.toml");
    std::fs::write(&file, policy).unwrap();
    let file = file.display().to_string();
    TestApp::start(&config_with(
        db,
        &[SECRET],
        &[
            ("STRIPE_API_KEY", key),
            ("STRIPE_API_BASE", emulator),
            ("IDVERDICT_RECONCILE_INTERVAL_SECS", "1"),
            ("IDVERDICT_EXPECTATIONS_KEY", EXPECTATIONS_KEY),
            ("IDVERDICT_CONFIG", file.as_str()),
        ],
    ))
    .await
}

fn expected() -> serde_json::Value {
    serde_json::json!({
        "first_name": FIRST,
        "last_name": LAST,
        "dob": {"day": 17, "month": 11, "year": 1987},
        "min_age": 18,
        "issuing_countries": ["FR", "DE", "ES"],
        "email": EMAIL,
        "phone": "+33 6 98 76 54 32",
    })
}

/// Create a session for `user` with `expected`, verify it at the emulator showing the person
/// of `outputs` (test-helper parameters), and wait until the user is decided.
async fn verify_with(
    app: &TestApp,
    emulator: &str,
    key: &str,
    user: &str,
    expected: serde_json::Value,
    outputs: &[(&str, &str)],
) -> serde_json::Value {
    let res = app
        .http
        .post(app.url(&format!("/v1/users/{user}/verification_sessions")))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({ "expected": expected }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201, "{user}");
    let id = res.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut form: Vec<(&str, &str)> = vec![
        ("verified_outputs[first_name]", FIRST),
        ("verified_outputs[last_name]", LAST),
        ("verified_outputs[dob][day]", "17"),
        ("verified_outputs[dob][month]", "11"),
        ("verified_outputs[dob][year]", "1987"),
        ("verified_outputs[email]", EMAIL),
        ("verified_outputs[phone]", PHONE),
        ("document[issuing_country]", "FR"),
    ];
    for (k, v) in outputs {
        form.retain(|(fk, _)| fk != k);
        form.push((k, v));
    }
    let verified = app
        .http
        .post(format!(
            "{emulator}/v1/test_helpers/identity/verification_sessions/{id}/verify"
        ))
        .bearer_auth(key)
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(verified.status(), 200, "{}", verified.text().await.unwrap());
    let mut user_json = serde_json::Value::Null;
    for _ in 0..400 {
        user_json = app.get(&format!("/v1/users/{user}")).await.1;
        // `none` until the first event is applied, `pending` while the checks run.
        let decided = user_json["state"]
            .as_str()
            .is_some_and(|s| s != "pending" && s != "none");
        if decided {
            return user_json;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{user} was not decided: {user_json}");
}

fn leaks(places: &[(String, String)]) -> Vec<String> {
    places
        .iter()
        .flat_map(|(place, value)| {
            PERSONAL
                .iter()
                .filter(|p| value.contains(*p))
                .map(move |p| format!("{place} contains {p:?}"))
        })
        .collect()
}

async fn verified_outputs_are_compared_with_what_the_app_expected(backend: Backend) {
    logs();
    let (emu, _dir) = start_emulator().await;
    let base = emu.base_url().to_string();
    let key = "rk_test_expectations";
    let db = TestDb::new(backend).await;
    let policy = "[policy.expectations.fields.min_age]\non_mismatch = \"rejected\"\n";
    let app = start_app(&db, &base, key, policy).await;

    // The same person, written differently: every field matches.
    let u = verify_with(
        &app,
        &base,
        key,
        "ex_match",
        expected(),
        &[
            ("verified_outputs[first_name]", "ZEPHYRINE"),
            ("verified_outputs[last_name]", "quackenbush oyelaran"),
        ],
    )
    .await;
    assert_eq!(u["state"], "verified", "{u}");
    assert_eq!(u["why"]["rule"], "verified", "{u}");
    let all_match = serde_json::json!({
        "first_name": "match", "last_name": "match", "dob": "match", "min_age": "match",
        "issuing_country": "match", "email": "match", "phone": "match",
    });
    assert_eq!(u["why"]["expectations"], all_match, "{u}");
    assert_eq!(u["checks"][0]["state"], "done", "{u}");
    assert_eq!(u["checks"][0]["results"], all_match, "{u}");

    // Each kind of mismatch, with its reason and what the policy makes of it.
    for (user, outputs, field, reason, state) in [
        (
            "ex_first",
            vec![("verified_outputs[first_name]", "Mallory")],
            "first_name",
            "name_mismatch",
            "needs_review",
        ),
        (
            "ex_last",
            vec![("verified_outputs[last_name]", "Mallory")],
            "last_name",
            "name_mismatch",
            "needs_review",
        ),
        (
            "ex_dob",
            vec![("verified_outputs[dob][day]", "18")],
            "dob",
            "dob_mismatch",
            "needs_review",
        ),
        (
            "ex_email",
            vec![("verified_outputs[email]", "kappa.other@example.org")],
            "email",
            "email_mismatch",
            "needs_review",
        ),
        (
            "ex_phone",
            vec![("verified_outputs[phone]", "+33611111111")],
            "phone",
            "phone_mismatch",
            "needs_review",
        ),
        (
            "ex_country",
            vec![("document[issuing_country]", "US")],
            "issuing_country",
            "country_not_accepted",
            "needs_review",
        ),
    ] {
        let u = verify_with(&app, &base, key, user, expected(), &outputs).await;
        assert_eq!(u["state"], state, "{user}: {u}");
        assert_eq!(
            (
                u["why"]["rule"].as_str(),
                u["why"]["field"].as_str(),
                u["why"]["result"].as_str(),
                u["why"]["reason"].as_str()
            ),
            (
                Some("expectation"),
                Some(field),
                Some("mismatch"),
                Some(reason)
            ),
            "{user}: {u}"
        );
        assert_eq!(u["why"]["expectations"][field], "mismatch", "{u}");
    }
    // Too young, by the app's rule alone (no name given): the policy rejects.
    let u = verify_with(
        &app,
        &base,
        key,
        "ex_young",
        serde_json::json!({"min_age": 18}),
        &[("verified_outputs[dob][year]", "2015")],
    )
    .await;
    assert_eq!(u["state"], "rejected", "{u}");
    assert_eq!(
        (u["why"]["field"].as_str(), u["why"]["reason"].as_str()),
        (Some("min_age"), Some("under_min_age")),
        "{u}"
    );
    // A user held for what was expected gets no other attempt from allow_retry.
    let res = app
        .http
        .post(app.url("/v1/reviews/ex_last"))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({"action": "allow_retry", "reviewer": "vera"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 409);
    // Bad input is refused precisely, naming the field and not echoing the value.
    let res = app
        .http
        .post(app.url("/v1/users/ex_bad/verification_sessions"))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({"expected": {"last_name": LAST, "dob": {"day": 31, "month": 2, "year": 1987}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_expected", "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("expected.dob"));
    app.stop().await;

    // Nothing personal anywhere: every text/blob cell of every table, and the logs.
    let mut raw = db.raw().await;
    let cells = dump(&mut raw, backend).await;
    assert!(
        cells
            .iter()
            .any(|(place, _)| place.starts_with("user_expectations.")),
        "the expectations are stored (as digests)"
    );
    let found = leaks(&cells);
    assert!(
        found.is_empty(),
        "personal values in the database: {found:#?}"
    );
    let text = String::from_utf8_lossy(&logs().lock().unwrap()).into_owned();
    assert!(
        text.contains("verified outputs checked"),
        "the logs were captured"
    );
    let found = leaks(&[("logs".to_string(), text)]);
    assert!(found.is_empty(), "personal values in the logs: {found:#?}");
    emu.shutdown().await.unwrap();
}
both_backends!(verified_outputs_are_compared_with_what_the_app_expected);

/// With a secret key (`sk_`), Stripe does not show the date of birth: the age and the date
/// are `unavailable`, and by default that means a review; the name still matches.
async fn without_a_restricted_key_the_date_of_birth_is_unavailable(backend: Backend) {
    logs();
    let (emu, _dir) = start_emulator().await;
    let base = emu.base_url().to_string();
    let key = "sk_test_expectations";
    let db = TestDb::new(backend).await;
    let app = start_app(&db, &base, key, "").await;
    let u = verify_with(
        &app,
        &base,
        key,
        "ex_sk",
        serde_json::json!({"last_name": LAST, "min_age": 18}),
        &[],
    )
    .await;
    assert_eq!(u["state"], "needs_review", "{u}");
    assert_eq!(
        (
            u["why"]["field"].as_str(),
            u["why"]["result"].as_str(),
            u["why"]["reason"].as_str()
        ),
        (
            Some("min_age"),
            Some("unavailable"),
            Some("verified_output_unavailable")
        ),
        "{u}"
    );
    assert_eq!(u["why"]["expectations"]["last_name"], "match", "{u}");
    app.stop().await;

    // The policy may accept what cannot be seen.
    let db = TestDb::new(backend).await;
    let app = start_app(
        &db,
        &base,
        key,
        "[policy.expectations.fields.min_age]\non_unavailable = \"ignore\"\n",
    )
    .await;
    let u = verify_with(
        &app,
        &base,
        key,
        "ex_sk2",
        serde_json::json!({"last_name": LAST, "min_age": 18}),
        &[],
    )
    .await;
    assert_eq!(u["state"], "verified", "{u}");
    assert_eq!(u["why"]["expectations"]["min_age"], "unavailable", "{u}");
    app.stop().await;
    emu.shutdown().await.unwrap();
}
both_backends!(without_a_restricted_key_the_date_of_birth_is_unavailable);

/// Once every session of a user is redacted, the keyed digests of what the app expected go
/// too (a digest of a name is still personal data): none of them is left in any cell. Which
/// fields were expected stays, so a later session is not waved through on them.
async fn redaction_forgets_the_expected_digests(backend: Backend) {
    logs();
    let (emu, _dir) = start_emulator().await;
    let base = emu.base_url().to_string();
    let key = "rk_test_expectations";
    let db = TestDb::new(backend).await;
    let app = start_app(&db, &base, key, "").await;

    let u = verify_with(&app, &base, key, "ex_forget", expected(), &[]).await;
    assert_eq!(u["state"], "verified", "{u}");
    let session = u["current_session"]
        .as_str()
        .expect("a session")
        .to_string();
    let mut raw = db.raw().await;
    let digests: Vec<String> = dump(&mut raw, backend)
        .await
        .into_iter()
        .filter(|(place, _)| place.starts_with("user_expectations.expectations"))
        .filter_map(|(_, value)| serde_json::from_str::<serde_json::Value>(&value).ok())
        .flat_map(|e| {
            e["digests"]
                .as_object()
                .map(|d| {
                    d.values()
                        .filter_map(|v| v.as_str().map(str::to_string))
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
        })
        .collect();
    assert_eq!(
        digests.len(),
        5,
        "names, dob, email and phone were digested"
    );

    let res = app
        .http
        .post(format!(
            "{base}/v1/identity/verification_sessions/{session}/redact"
        ))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let mut redacted = false;
    for _ in 0..400 {
        let s = app
            .get(&format!("/v1/verification_sessions/{session}"))
            .await
            .1;
        if s["redaction"]["status"] == "redacted" {
            redacted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(redacted, "the redaction was applied");
    let cells = dump(&mut raw, backend).await;
    let left: Vec<&(String, String)> = cells
        .iter()
        .filter(|(_, value)| digests.iter().any(|d| value.contains(d.as_str())))
        .collect();
    assert!(left.is_empty(), "digests left after redaction: {left:#?}");

    // Which fields were expected stays (the unit tests show a later session is then held
    // on them as `unavailable`); the user's verdict is not changed by the redaction.
    let kept: Vec<serde_json::Value> = cells
        .iter()
        .filter(|(place, _)| place.starts_with("user_expectations.expectations"))
        .filter_map(|(_, value)| serde_json::from_str(value).ok())
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(
        kept[0]["erased"],
        serde_json::json!(["first_name", "last_name", "dob", "email", "phone"]),
        "{kept:?}"
    );
    assert_eq!(app.get("/v1/users/ex_forget").await.1["state"], "verified");
    app.stop().await;
    emu.shutdown().await.unwrap();
}
both_backends!(redaction_forgets_the_expected_digests);
