//! The controller's REST API, as the CLI calls it.

use anyhow::{Context, Result, anyhow, bail};
use reqwest::{Method, StatusCode, Url};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::api::Page;
use super::output;

/// The API version this client speaks.
const API_MAJOR: &str = "2";

/// An authenticated (or not yet) REST client.
pub struct Client {
    http: reqwest::Client,
    /// The controller URL, without trailing slash.
    pub base: String,
    url: Url,
    token: Option<String>,
}

/// A typed answer, with the JSON it came from (what `--json` prints).
#[derive(Debug)]
pub struct Reply<T> {
    /// The answer as the controller sent it.
    pub raw: Value,
    /// The fields the CLI reads.
    pub body: T,
}

/// Every page of a list, up to a limit.
#[derive(Debug)]
pub struct Listing<T> {
    /// How many items the controller has in all.
    pub count: u64,
    /// The items as the controller sent them.
    pub raw: Vec<Value>,
    /// The fields the CLI reads, item by item.
    pub items: Vec<T>,
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

/// Reads `raw` as a `T`, naming the request when the controller answered something else.
fn typed<T: DeserializeOwned>(raw: &Value, path: &str) -> Result<T> {
    T::deserialize(raw).with_context(|| {
        format!("the controller's answer to {path} is not what this client understands")
    })
}

impl Client {
    /// A client for `base`, authenticating with `token` when given.
    pub fn new(base: &str, token: Option<String>) -> Result<Client> {
        let base = normalize_url(base)?;
        let url = Url::parse(&base)?;
        let http = reqwest::Client::builder()
            .user_agent(concat!("deis-cli/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(std::time::Duration::from_secs(10))
            .build()?;
        Ok(Client {
            http,
            base,
            url,
            token,
        })
    }

    /// `/v2/<path...>/` under the controller URL, each segment escaped.
    fn url(&self, path: &[&str]) -> Url {
        let mut url = self.url.clone();
        // An http(s) URL always has path segments.
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty().push("v2").extend(path).push("");
        }
        url
    }

    /// A request to `/v2/<path...>/`.
    pub fn request(&self, method: Method, path: &[&str]) -> Request<'_> {
        let url = self.url(path);
        Request {
            client: self,
            path: url.path().to_string(),
            builder: self.http.request(method, url),
        }
    }

    /// GET `/v2/<path...>/`.
    pub fn get(&self, path: &[&str]) -> Request<'_> {
        self.request(Method::GET, path)
    }

    /// POST `body` to `/v2/<path...>/`.
    pub fn post(&self, path: &[&str], body: &impl Serialize) -> Request<'_> {
        self.request(Method::POST, path).json(body)
    }

    /// DELETE `/v2/<path...>/`.
    pub fn delete(&self, path: &[&str]) -> Request<'_> {
        self.request(Method::DELETE, path)
    }

    /// GETs every page of a list (up to `limit` items).
    pub async fn list<T: DeserializeOwned>(
        &self,
        path: &[&str],
        limit: usize,
    ) -> Result<Listing<T>> {
        let mut raw = Vec::new();
        let mut offset = 0usize;
        let count = loop {
            let page = self
                .get(path)
                .query(&[("limit", limit.min(1000)), ("offset", offset)])
                .reply::<Page<Value>>()
                .await?
                .body;
            let n = page.results.len();
            raw.extend(page.results);
            offset += n;
            if n == 0 || raw.len() >= limit || offset as u64 >= page.count {
                raw.truncate(limit);
                break page.count;
            }
        };
        let path = self.url(path).path().to_string();
        let items = raw.iter().map(|v| typed(v, &path)).collect::<Result<_>>()?;
        Ok(Listing { count, raw, items })
    }
}

/// A request on its way: add a query or a body, then send it.
pub struct Request<'a> {
    client: &'a Client,
    path: String,
    builder: reqwest::RequestBuilder,
}

impl Request<'_> {
    /// Adds query parameters (escaped by reqwest).
    pub fn query<Q: Serialize + ?Sized>(mut self, query: &Q) -> Self {
        self.builder = self.builder.query(query);
        self
    }

    /// Sends `body` as JSON.
    pub fn json(mut self, body: &impl Serialize) -> Self {
        self.builder = self.builder.json(body);
        self
    }

    /// Sends the request (with the token); answers the response if its status is a success.
    pub async fn response(self) -> Result<reqwest::Response> {
        let c = self.client;
        let mut req = self.builder;
        if let Some(t) = &c.token {
            req = req.header("Authorization", format!("token {t}"));
        }
        let res = req.send().await.map_err(|e| {
            anyhow!("cannot reach the controller at {}: {e}\nIs the platform running? Start it with `workflow up`.", c.base)
        })?;
        if let Some(v) = res
            .headers()
            .get("deis_api_version")
            .and_then(|v| v.to_str().ok())
            && v.split('.').next() != Some(API_MAJOR)
        {
            output::warning(format!(
                "the controller speaks API {v}; this client speaks {API_MAJOR}.x"
            ));
        }
        let status = res.status();
        if !status.is_success() {
            let text = res.text().await.unwrap_or_default();
            return Err(describe(status, &text, &c.base));
        }
        Ok(res)
    }

    /// Sends the request; answers the raw body.
    pub async fn text(self) -> Result<String> {
        Ok(self.response().await?.text().await.unwrap_or_default())
    }

    /// Sends the request; success is all that matters.
    pub async fn send(self) -> Result<()> {
        self.response().await.map(drop)
    }

    /// Sends the request; answers the JSON (`null` for an empty body), read as a `T`.
    pub async fn reply<T: DeserializeOwned>(self) -> Result<Reply<T>> {
        let path = self.path.clone();
        let text = self.text().await?;
        let raw = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).with_context(|| {
                format!("the controller answered {path} with something that is not JSON")
            })?
        };
        let body = typed(&raw, &path)?;
        Ok(Reply { raw, body })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_escaped_segments_with_a_trailing_slash() {
        let c = Client::new("127.0.0.1:8000/", None).unwrap();
        assert_eq!(
            c.url(&["keys", "alice@laptop"]).as_str(),
            "http://127.0.0.1:8000/v2/keys/alice@laptop/"
        );
        assert_eq!(
            c.url(&["admin", "perms", "a/b c"]).as_str(),
            "http://127.0.0.1:8000/v2/admin/perms/a%2Fb%20c/"
        );
        let c = Client::new("https://h/deis", None).unwrap();
        assert_eq!(c.url(&["apps"]).as_str(), "https://h/deis/v2/apps/");
    }
}
