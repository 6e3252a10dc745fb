//! The S3 object store (aws-sdk-s3): custom endpoint, path-style addressing, multipart upload
//! for objects larger than one part. Memory per write is bounded by one part.

use aws_sdk_s3::Client;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::primitives::ByteStream as SdkStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use bytes::{Bytes, BytesMut};
use futures::StreamExt;

use crate::error::{Error, Result};
use crate::{ByteRange, ByteStream, ObjectMeta, ObjectStore, validate_key, validate_prefix};

/// Size of one multipart part (S3 needs at least 5 MiB for all but the last).
const PART_SIZE: usize = 8 * 1024 * 1024;

/// Where and how to reach the bucket.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct S3Config {
    /// Endpoint URL (e.g. `http://127.0.0.1:9000`); `None` for AWS.
    pub endpoint: Option<String>,
    /// Bucket name.
    pub bucket: String,
    /// Region (`us-east-1` when unsure).
    pub region: String,
    /// Path-style addressing (`endpoint/bucket/key`), needed by most non-AWS servers.
    pub path_style: bool,
    /// Access key id; with the secret, static credentials.
    pub access_key_id: String,
    /// Secret access key.
    pub secret_access_key: String,
    /// Key prefix inside the bucket (e.g. `registry/`), may be empty.
    pub prefix: String,
    /// Create the bucket at start when it does not exist.
    pub create_bucket: bool,
}

/// Objects in an S3 bucket.
#[derive(Debug, Clone)]
pub struct S3Store {
    client: Client,
    bucket: String,
    prefix: String,
}

fn s3_err(op: &'static str, key: &str, e: impl std::error::Error) -> Error {
    // Render the whole source chain: the SDK's top level says only "service error".
    let mut message = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        message.push_str(": ");
        message.push_str(&s.to_string());
        src = s.source();
    }
    Error::S3 {
        op,
        key: key.to_string(),
        message,
    }
}

impl S3Store {
    /// Builds the client and (optionally) creates the bucket.
    pub async fn connect(config: &S3Config) -> Result<Self> {
        if config.bucket.is_empty() {
            return Err(Error::Config("s3 bucket is empty".into()));
        }
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        let region = if config.region.is_empty() {
            "us-east-1".to_string()
        } else {
            config.region.clone()
        };
        let mut builder = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .http_client(http)
            .region(Region::new(region))
            .force_path_style(config.path_style)
            .request_checksum_calculation(
                aws_sdk_s3::config::RequestChecksumCalculation::WhenRequired,
            )
            .response_checksum_validation(
                aws_sdk_s3::config::ResponseChecksumValidation::WhenRequired,
            )
            .credentials_provider(Credentials::new(
                config.access_key_id.clone(),
                config.secret_access_key.clone(),
                None,
                None,
                "workflow-config",
            ));
        if let Some(ep) = &config.endpoint {
            builder = builder.endpoint_url(ep.clone());
        }
        let client = Client::from_conf(builder.build());
        let mut prefix = config.prefix.trim_matches('/').to_string();
        if !prefix.is_empty() {
            validate_key(&prefix)?;
            prefix.push('/');
        }
        let store = S3Store {
            client,
            bucket: config.bucket.clone(),
            prefix,
        };
        if config.create_bucket {
            store.create_bucket().await?;
        }
        Ok(store)
    }

    async fn create_bucket(&self) -> Result<()> {
        if self
            .client
            .head_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .is_ok()
        {
            return Ok(());
        }
        match self
            .client
            .create_bucket()
            .bucket(&self.bucket)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => {
                let code = e.as_service_error().and_then(|s| {
                    use aws_sdk_s3::error::ProvideErrorMetadata;
                    s.code().map(str::to_string)
                });
                if matches!(
                    code.as_deref(),
                    Some("BucketAlreadyOwnedByYou") | Some("BucketAlreadyExists")
                ) {
                    Ok(())
                } else {
                    Err(s3_err("create bucket", &self.bucket, e))
                }
            }
        }
    }

    fn full(&self, key: &str) -> Result<String> {
        validate_key(key)?;
        Ok(format!("{}{key}", self.prefix))
    }

    async fn put_multipart(
        &self,
        key: &str,
        full: &str,
        first: Bytes,
        mut body: ByteStream,
    ) -> Result<u64> {
        let created = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(full)
            .send()
            .await
            .map_err(|e| s3_err("create multipart upload", key, e))?;
        let upload_id = created
            .upload_id()
            .ok_or_else(|| Error::S3 {
                op: "create multipart upload",
                key: key.to_string(),
                message: "no upload id in answer".into(),
            })?
            .to_string();
        let result: Result<(Vec<CompletedPart>, u64)> = async {
            let mut parts = Vec::new();
            let mut total = 0u64;
            let mut pending = Some(first);
            let mut buf = BytesMut::with_capacity(PART_SIZE);
            let mut ended = false;
            loop {
                let part = if let Some(p) = pending.take() {
                    p
                } else {
                    if ended {
                        break;
                    }
                    while buf.len() < PART_SIZE {
                        match body.next().await {
                            Some(chunk) => {
                                let chunk =
                                    chunk.map_err(|e| Error::io("read body for", key, e))?;
                                buf.extend_from_slice(&chunk);
                            }
                            None => {
                                ended = true;
                                break;
                            }
                        }
                    }
                    if buf.is_empty() {
                        break;
                    }
                    let take = buf.len().min(PART_SIZE);
                    buf.split_to(take).freeze()
                };
                let number = parts.len() as i32 + 1;
                total += part.len() as u64;
                let out = self
                    .client
                    .upload_part()
                    .bucket(&self.bucket)
                    .key(full)
                    .upload_id(&upload_id)
                    .part_number(number)
                    .body(SdkStream::from(part))
                    .send()
                    .await
                    .map_err(|e| s3_err("upload part", key, e))?;
                parts.push(
                    CompletedPart::builder()
                        .part_number(number)
                        .set_e_tag(out.e_tag().map(str::to_string))
                        .build(),
                );
            }
            Ok((parts, total))
        }
        .await;
        match result {
            Ok((parts, total)) => {
                self.client
                    .complete_multipart_upload()
                    .bucket(&self.bucket)
                    .key(full)
                    .upload_id(&upload_id)
                    .multipart_upload(
                        CompletedMultipartUpload::builder()
                            .set_parts(Some(parts))
                            .build(),
                    )
                    .send()
                    .await
                    .map_err(|e| s3_err("complete multipart upload", key, e))?;
                Ok(total)
            }
            Err(e) => {
                let _ = self
                    .client
                    .abort_multipart_upload()
                    .bucket(&self.bucket)
                    .key(full)
                    .upload_id(&upload_id)
                    .send()
                    .await;
                Err(e)
            }
        }
    }
}

#[async_trait::async_trait]
impl ObjectStore for S3Store {
    async fn put(&self, key: &str, mut body: ByteStream) -> Result<u64> {
        let full = self.full(key)?;
        // Buffer one part: small objects go up in one PUT, larger ones as a multipart upload.
        let mut buf = BytesMut::new();
        while buf.len() < PART_SIZE {
            match body.next().await {
                Some(chunk) => {
                    let chunk = chunk.map_err(|e| Error::io("read body for", key, e))?;
                    buf.extend_from_slice(&chunk);
                }
                None => {
                    let len = buf.len() as u64;
                    self.client
                        .put_object()
                        .bucket(&self.bucket)
                        .key(&full)
                        .body(SdkStream::from(buf.freeze()))
                        .send()
                        .await
                        .map_err(|e| s3_err("put object", key, e))?;
                    return Ok(len);
                }
            }
        }
        let first = buf.split_to(PART_SIZE).freeze();
        let rest: ByteStream = if buf.is_empty() {
            body
        } else {
            let leftover = buf.freeze();
            Box::pin(futures::stream::once(async move { Ok(leftover) }).chain(body))
        };
        self.put_multipart(key, &full, first, rest).await
    }

    async fn get(&self, key: &str, range: Option<ByteRange>) -> Result<ByteStream> {
        let full = self.full(key)?;
        let mut req = self.client.get_object().bucket(&self.bucket).key(&full);
        if let Some(r) = range {
            req = req.range(match r.end {
                Some(end) => format!("bytes={}-{end}", r.start),
                None => format!("bytes={}-", r.start),
            });
        }
        let out = match req.send().await {
            Ok(o) => o,
            Err(e) => {
                if e.as_service_error().is_some_and(|s| s.is_no_such_key()) {
                    return Err(Error::NotFound(key.to_string()));
                }
                return Err(s3_err("get object", key, e));
            }
        };
        let body = out.body;
        let stream = futures::stream::unfold(body, |mut body| async move {
            match body.next().await {
                Some(Ok(b)) => Some((Ok(b), body)),
                Some(Err(e)) => Some((Err(std::io::Error::other(e)), body)),
                None => None,
            }
        });
        Ok(Box::pin(stream))
    }

    async fn head(&self, key: &str) -> Result<Option<u64>> {
        let full = self.full(key)?;
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(&full)
            .send()
            .await
        {
            Ok(o) => Ok(Some(o.content_length().unwrap_or(0).max(0) as u64)),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Ok(None),
            Err(e) => Err(s3_err("head object", key, e)),
        }
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let full = self.full(key)?;
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(&full)
            .send()
            .await
            .map_err(|e| s3_err("delete object", key, e))?;
        Ok(())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>> {
        validate_prefix(prefix)?;
        let full = format!("{}{prefix}", self.prefix);
        let mut out = Vec::new();
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(&full)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| s3_err("list objects", prefix, e))?;
            for o in page.contents() {
                let Some(k) = o.key() else { continue };
                let Some(k) = k.strip_prefix(&self.prefix) else {
                    continue;
                };
                out.push(ObjectMeta {
                    key: k.to_string(),
                    size: o.size().unwrap_or(0).max(0) as u64,
                    modified: o
                        .last_modified()
                        .and_then(|t| std::time::SystemTime::try_from(*t).ok()),
                });
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    async fn rename(&self, from: &str, to: &str) -> Result<()> {
        let src = self.full(from)?;
        let dst = self.full(to)?;
        let size = self
            .head(from)
            .await?
            .ok_or_else(|| Error::NotFound(from.to_string()))?;
        if size >= 5 * 1024 * 1024 * 1024 {
            // CopyObject stops at 5 GiB: stream it instead.
            let body = self.get(from, None).await?;
            self.put(to, body).await?;
        } else {
            self.client
                .copy_object()
                .bucket(&self.bucket)
                .key(&dst)
                .copy_source(format!("{}/{}", self.bucket, src))
                .send()
                .await
                .map_err(|e| s3_err("copy object", from, e))?;
        }
        self.delete(from).await
    }
}
