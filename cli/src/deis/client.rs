//! The controller's REST API, as the CLI calls it.

use anyhow::{Context, Result, anyhow, bail};
use reqwest::{Method, StatusCode};
use serde_json::Value;

/// The API version this client speaks.
const API_MAJOR: &str = "2";

/// An authenticated (or not yet) REST client.
pub struct Client {
    http: reqwest::Client,
    /// The controller URL, without trailing slash.
    pub base: String,
    token: Option<String>,
}

/// What went wrong with a request, with an actionable message.
fn describe(status: StatusCode, body: &str, base: &str) -> anyhow::Error {
    let parsed: Option<Value> = serde_json::from_str(body).ok();
    let detail = parsed
        .as_ref()
        .and_then(|v| v.get("detail"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .or_else(|| {
            // {"field": ["message"]} without a detail.
            parsed.as_ref().and_then(Value::as_object).map(|m| {
                m.iter()
                    .map(|(k, v)| match v {
                        Value::Array(a) => format!(
                            "{k}: {}",
                            a.iter()
                                .filter_map(Value::as_str)
                                .collect::<Vec<_>>()
                                .join("; ")
                        ),
                        other => format!("{k}: {other}"),
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            })
        })
        .unwrap_or_else(|| body.trim().chars().take(500).collect());
    match status {
        StatusCode::UNAUTHORIZED => anyhow!("{detail}\nLog in again: deis login {base}"),
        _ => anyhow!("{detail} ({status})"),
    }
}

impl Client {
    /// A client for `base`, authenticating with `token` when given.
    pub fn new(base: &str, token: Option<String>) -> Result<Client> {
        let base = normalize_url(base)?;
        let http = reqwest::Client::builder()
            .user_agent(concat!("deis-cli/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(std::time::Duration::from_secs(10))
            .build()?;
        Ok(Client { http, base, token })
    }

    /// Sends a request; answers the parsed JSON (Null for empty bodies) or a readable error.
    pub async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Value> {
        let text = self.call_text(method, path, body).await?;
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text).with_context(|| {
            format!("the controller answered {path} with something that is not JSON")
        })
    }

    /// Sends a request (with the token) and answers the response if its status is a success.
    async fn send(&self, mut req: reqwest::RequestBuilder) -> Result<reqwest::Response> {
        if let Some(t) = &self.token {
            req = req.header("Authorization", format!("token {t}"));
        }
        let res = req.send().await.map_err(|e| {
            anyhow!("cannot reach the controller at {}: {e}\nIs the platform running? Start it with `workflow up`.", self.base)
        })?;
        if let Some(v) = res
            .headers()
            .get("deis_api_version")
            .and_then(|v| v.to_str().ok())
            && v.split('.').next() != Some(API_MAJOR)
        {
            eprintln!("warning: the controller speaks API {v}; this client speaks {API_MAJOR}.x");
        }
        let status = res.status();
        if !status.is_success() {
            let text = res.text().await.unwrap_or_default();
            return Err(describe(status, &text, &self.base));
        }
        Ok(res)
    }

    /// Sends a request; answers the raw body.
    pub async fn call_text(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<String> {
        let mut req = self.http.request(method, format!("{}{}", self.base, path));
        if let Some(b) = body {
            req = req.json(b);
        }
        Ok(self.send(req).await?.text().await.unwrap_or_default())
    }

    /// GETs `path` for streaming the answer.
    pub async fn get_response(&self, path: &str) -> Result<reqwest::Response> {
        self.send(self.http.get(format!("{}{}", self.base, path)))
            .await
    }

    /// POSTs `body` to `path` for streaming the answer.
    pub async fn post_stream(&self, path: &str, body: &Value) -> Result<reqwest::Response> {
        self.send(self.http.post(format!("{}{}", self.base, path)).json(body))
            .await
    }

    /// GETs every page of a list (up to `limit` items).
    pub async fn list(&self, path: &str, limit: usize) -> Result<(u64, Vec<Value>)> {
        let mut out = Vec::new();
        let mut offset = 0usize;
        loop {
            let page = self
                .call(
                    Method::GET,
                    &format!("{path}?limit={}&offset={offset}", limit.min(1000)),
                    None,
                )
                .await?;
            let count = page.get("count").and_then(Value::as_u64).unwrap_or(0);
            let results = page
                .get("results")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let n = results.len();
            out.extend(results);
            offset += n;
            if n == 0 || out.len() >= limit || offset as u64 >= count {
                out.truncate(limit);
                return Ok((count, out));
            }
        }
    }
}

/// Accepts `host:port`, `http://host:port/`, and refuses what is not a URL.
pub fn normalize_url(s: &str) -> Result<String> {
    let s = s.trim().trim_end_matches('/');
    if s.is_empty() {
        bail!("the controller URL is empty; e.g. http://127.0.0.1:8000");
    }
    let with_scheme = if s.starts_with("http://") || s.starts_with("https://") {
        s.to_string()
    } else {
        format!("http://{s}")
    };
    let parsed = reqwest::Url::parse(&with_scheme)
        .map_err(|e| anyhow!("{s:?} is not a controller URL ({e}); e.g. http://127.0.0.1:8000"))?;
    if parsed.host_str().is_none() {
        bail!("{s:?} has no host; e.g. http://127.0.0.1:8000");
    }
    Ok(with_scheme)
}
