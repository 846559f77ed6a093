//! A console user over plain HTTP: keeps its cookies, reads the CSRF token from pages, and
//! posts forms with the headers a browser sends (`Origin`), so a test can also leave them out.
#![allow(dead_code)]

use std::collections::BTreeMap;

use idverdict::console::passwords::hash_password;
use idverdict::decide::access::Role;
use idverdict::store::Store;

pub const PASSWORD: &str = "correct horse battery staple";

/// Add an operator with [`PASSWORD`].
pub async fn add_operator(store: &Store, email: &str, role: Role) {
    let hash = hash_password(PASSWORD).expect("hash");
    store
        .insert_operator(email, role, &hash, idverdict::clock::now_ms())
        .await
        .expect("insert operator")
        .expect("a new operator");
}

/// One answer: status, `Location` and body.
#[derive(Debug)]
pub struct Page {
    pub status: u16,
    pub location: Option<String>,
    pub body: String,
    pub headers: reqwest::header::HeaderMap,
}

impl Page {
    /// The synchronizer token of the page's forms.
    pub fn csrf(&self) -> String {
        csrf_of(&self.body).expect("a csrf_token on the page")
    }
}

pub fn csrf_of(html: &str) -> Option<String> {
    let marker = "name=\"csrf_token\" value=\"";
    let start = html.find(marker)? + marker.len();
    let end = start + html[start..].find('"')?;
    Some(html[start..end].to_string())
}

/// A console session from one client.
pub struct Console {
    pub base: String,
    http: reqwest::Client,
    pub cookies: BTreeMap<String, String>,
    /// Sent as `X-Forwarded-For` (the app trusts 127.0.0.1 as a proxy in tests that set it).
    pub forwarded_for: Option<String>,
}

impl Console {
    pub fn new(base: &str) -> Console {
        Console {
            base: base.trim_end_matches('/').to_string(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            cookies: BTreeMap::new(),
            forwarded_for: None,
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn finish(&mut self, req: reqwest::RequestBuilder) -> Page {
        let mut req = req.header("cookie", self.cookie_header());
        if let Some(f) = &self.forwarded_for {
            req = req.header("x-forwarded-for", f);
        }
        let res = req.send().await.expect("request");
        for v in res.headers().get_all("set-cookie") {
            let text = v.to_str().unwrap_or_default();
            let pair = text.split(';').next().unwrap_or_default();
            if let Some((name, value)) = pair.split_once('=') {
                if value.is_empty() || text.contains("Max-Age=0") {
                    self.cookies.remove(name);
                } else {
                    self.cookies.insert(name.to_string(), value.to_string());
                }
            }
        }
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let location = headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        Page {
            status,
            location,
            headers,
            body: res.text().await.unwrap_or_default(),
        }
    }

    pub async fn get(&mut self, path: &str) -> Page {
        let req = self.http.get(format!("{}{path}", self.base));
        self.finish(req).await
    }

    /// POST a form. `origin`: the `Origin` header (`Some(None)`-like control through
    /// [`Console::post_with`]); here the console's own origin.
    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let origin = self.base.clone();
        self.post_with(path, fields, Some(&origin)).await
    }

    pub async fn post_with(
        &mut self,
        path: &str,
        fields: &[(&str, &str)],
        origin: Option<&str>,
    ) -> Page {
        let mut req = self.http.post(format!("{}{path}", self.base)).form(fields);
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        self.finish(req).await
    }

    /// POST a form with exactly these extra headers (no `Origin` unless given).
    pub async fn post_headers(
        &mut self,
        path: &str,
        fields: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Page {
        let mut req = self.http.post(format!("{}{path}", self.base)).form(fields);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        self.finish(req).await
    }

    /// Log in; the login answer (303 to the console when it worked).
    pub async fn login(&mut self, email: &str, password: &str) -> Page {
        let form = self.get("/console/login").await;
        assert_eq!(form.status, 200, "{}", form.body);
        let token = form.csrf();
        self.post(
            "/console/login",
            &[
                ("email", email),
                ("password", password),
                ("csrf_token", &token),
            ],
        )
        .await
    }

    /// Log in and fail the test unless it worked.
    pub async fn logged_in(base: &str, email: &str) -> Console {
        let mut c = Console::new(base);
        let page = c.login(email, PASSWORD).await;
        assert_eq!(page.status, 303, "login of {email}: {}", page.body);
        assert_eq!(page.location.as_deref(), Some("/console"));
        c
    }

    /// A page's CSRF token (any console page carries it in the logout form).
    pub async fn token(&mut self) -> String {
        let page = self.get("/console").await;
        assert_eq!(page.status, 200, "{}", page.body);
        page.csrf()
    }
}
