//! TLS certificates (`/v2/certs`, `deis certs:*`): uploaded PEM pairs, owned by the user who
//! added them, attached to custom domains so the router serves them by SNI.
//!
//! Validation is a pure function ([`parse_cert`]): the certificate must parse as X.509, the
//! key as PKCS#1/PKCS#8/SEC1, and the key must be the certificate's. Attaching or detaching
//! a certificate hands the domain's app to the reconcile loop, which republishes its routes.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::Controller;
use super::apps::{Access, app_for};
use super::rows;
use crate::error::{Error, Result};
use crate::model::{Page, PageRequest, User, now};
use crate::store::{Conn, Row, StoreError};

/// A certificate as Deis shows it (the PEM texts are write-only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cert {
    /// The user's name for it.
    pub name: String,
    /// Who added it.
    pub owner: String,
    /// The subject's common name (empty when the subject has none).
    pub common_name: String,
    /// DNS names of the subjectAltName extension.
    pub san: Vec<String>,
    /// SHA-256 of the DER certificate, `AB:CD:...`.
    pub fingerprint: String,
    /// `/C=../O=../CN=..`.
    pub issuer: String,
    /// `/C=../O=../CN=..`.
    pub subject: String,
    /// Not valid before.
    pub starts: String,
    /// Not valid after.
    pub expires: String,
    /// Domains it is attached to.
    pub domains: Vec<String>,
    /// Creation time.
    pub created: String,
    /// Update time.
    pub updated: String,
}

/// What a valid upload yields, before it is stored.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedCert {
    /// The subject's common name.
    pub common_name: String,
    /// subjectAltName DNS names.
    pub san: Vec<String>,
    /// SHA-256 fingerprint, `AB:CD:...`.
    pub fingerprint: String,
    /// `/K=v/...`.
    pub issuer: String,
    /// `/K=v/...`.
    pub subject: String,
    /// Not valid before (`2016-09-13T18:29:54Z`).
    pub starts: String,
    /// Not valid after.
    pub expires: String,
}

/// Checks a certificate name as Deis does (Kubernetes label rules).
pub fn check_cert_name(name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(Error::invalid(
            "name",
            name,
            "a certificate name is required, e.g. www-example-com",
        ));
    }
    if name.len() > 253 {
        return Err(Error::invalid(
            "name",
            name,
            "a certificate name is at most 253 characters",
        ));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(Error::invalid(
            "name",
            name,
            "Can only contain a-z (lowercase), 0-9 and hyphens",
        ));
    }
    Ok(())
}

fn name_of(name: &x509_parser::x509::X509Name<'_>) -> String {
    let registry = x509_parser::objects::oid_registry();
    let mut out = String::new();
    for rdn in name.iter() {
        for attr in rdn.iter() {
            let oid = attr.attr_type();
            let key = x509_parser::objects::oid2abbrev(oid, registry)
                .map(str::to_string)
                .unwrap_or_else(|_| oid.to_id_string());
            let value = attr
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|_| hex::encode(attr.attr_value().data));
            out.push('/');
            out.push_str(&key);
            out.push('=');
            out.push_str(&value);
        }
    }
    out
}

fn time_of(t: &x509_parser::time::ASN1Time) -> String {
    chrono::DateTime::from_timestamp(t.timestamp(), 0)
        .map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

/// Validates an upload: the first certificate of `certificate` parses, `key` parses, and
/// the key is the certificate's. Errors name the field (`certificate`, `key`) and the reason.
pub fn parse_cert(certificate: &str, key: &str) -> Result<ParsedCert> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};

    let bad_cert = |why: String| Error::invalid("certificate", certificate, why);
    if certificate.trim().is_empty() {
        return Err(bad_cert(
            "a PEM certificate is required (-----BEGIN CERTIFICATE-----)".into(),
        ));
    }
    let der = CertificateDer::pem_slice_iter(certificate.as_bytes())
        .next()
        .ok_or_else(|| bad_cert("Could not load certificate: no PEM CERTIFICATE block".into()))?
        .map_err(|e| bad_cert(format!("Could not load certificate: {e}")))?;
    let (_, x509) = x509_parser::parse_x509_certificate(der.as_ref())
        .map_err(|e| bad_cert(format!("Could not load certificate: {e}")))?;

    let bad_key = |why: String| Error::invalid("key", "(hidden)", why);
    if key.trim().is_empty() {
        return Err(bad_key(
            "a PEM private key is required (-----BEGIN PRIVATE KEY-----)".into(),
        ));
    }
    let key_der = PrivateKeyDer::from_pem_slice(key.as_bytes())
        .map_err(|e| bad_key(format!("Could not load private key: {e}")))?;
    let signer = rustls::crypto::ring::sign::any_supported_type(&key_der)
        .map_err(|e| bad_key(format!("Could not load private key: {e}")))?;
    rustls::sign::CertifiedKey::new(vec![der.clone().into_owned()], signer)
        .keys_match()
        .map_err(|e| {
            bad_key(match e {
                rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch) => {
                    "the private key does not match the certificate's public key".to_string()
                }
                other => format!("could not check the key against the certificate: {other}"),
            })
        })?;

    let common_name = x509
        .subject()
        .iter_common_name()
        .next()
        .and_then(|a| a.as_str().ok())
        .unwrap_or_default()
        .to_string();
    let san = match x509.subject_alternative_name() {
        Ok(Some(ext)) => ext
            .value
            .general_names
            .iter()
            .filter_map(|n| match n {
                x509_parser::extensions::GeneralName::DNSName(d) => Some(d.to_string()),
                _ => None,
            })
            .collect(),
        Ok(None) => Vec::new(),
        Err(e) => {
            return Err(bad_cert(format!(
                "Could not load certificate: subjectAltName: {e}"
            )));
        }
    };
    let fingerprint = Sha256::digest(der.as_ref())
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":");
    Ok(ParsedCert {
        common_name,
        san,
        fingerprint,
        issuer: name_of(x509.issuer()),
        subject: name_of(x509.subject()),
        starts: time_of(&x509.validity().not_before),
        expires: time_of(&x509.validity().not_after),
    })
}

const CERT_SELECT: &str = "SELECT c.uuid, u.username, c.name, c.common_name, c.san, c.fingerprint, c.issuer, c.subject, c.starts, c.expires, c.created, c.updated, c.owner_id FROM certs c JOIN users u ON u.id = c.owner_id";

fn cert_row(c: &mut dyn Conn, r: &Row) -> Result<Cert> {
    let uuid = r.text(0);
    let san: Vec<String> = serde_json::from_str(&r.text(4)).map_err(|e| {
        Error::Store(StoreError::Decode {
            column: "certs.san",
            key: uuid.clone(),
            reason: e.to_string(),
        })
    })?;
    let domains = c
        .query(
            "SELECT domain FROM domains WHERE cert_uuid = $1 ORDER BY domain",
            &[uuid.as_str().into()],
        )?
        .iter()
        .map(|d| d.text(0))
        .collect();
    Ok(Cert {
        owner: r.text(1),
        name: r.text(2),
        common_name: r.text(3),
        san,
        fingerprint: r.text(5),
        issuer: r.text(6),
        subject: r.text(7),
        starts: r.text(8),
        expires: r.text(9),
        domains,
        created: rows::api_time(&r.text(10)),
        updated: rows::api_time(&r.text(11)),
    })
}

fn not_found(name: &str) -> Error {
    Error::NotFound(format!("certificate {name:?} not found (see deis certs)"))
}

/// The certificate named `name` if `caller` owns it or is an administrator: (uuid, row).
fn cert_for(c: &mut dyn Conn, caller: &User, name: &str) -> Result<(String, Cert)> {
    let sql = format!("{CERT_SELECT} WHERE c.name = $1");
    let row = c
        .query_opt(&sql, &[name.into()])?
        .ok_or_else(|| not_found(name))?;
    // Someone else's certificate is as invisible as a missing one.
    if !caller.is_superuser && row.int(12) != caller.id {
        return Err(not_found(name));
    }
    let cert = cert_row(c, &row)?;
    Ok((row.text(0), cert))
}

/// The domain row (app uuid, cert uuid) after checking `caller` may use its app.
fn domain_for(c: &mut dyn Conn, caller: &User, domain: &str) -> Result<(String, Option<String>)> {
    let row = c
        .query_opt(
            "SELECT a.name, d.cert_uuid, a.uuid FROM domains d JOIN apps a ON a.uuid = d.app_uuid WHERE d.domain = $1",
            &[domain.into()],
        )?
        .ok_or_else(|| {
            Error::NotFound(format!(
                "domain {domain:?} not found: add it to an app first (deis domains:add {domain} -a APP)"
            ))
        })?;
    app_for(c, caller, &row.text(0), Access::Use)?;
    Ok((row.text(2), row.opt_text(1)))
}

impl Controller {
    /// The caller's certificates (an administrator's: everyone's).
    pub async fn list_certs(&self, caller: &User, page: PageRequest) -> Result<Page<Cert>> {
        let caller = caller.clone();
        self.store
            .read(move |c| {
                let (filter, params): (&str, Vec<crate::store::Value>) = if caller.is_superuser {
                    ("", vec![])
                } else {
                    (" WHERE c.owner_id = $1", vec![caller.id.into()])
                };
                let count =
                    rows::count(c, &format!("SELECT COUNT(*) FROM certs c{filter}"), &params)?;
                let n = params.len();
                let sql = format!(
                    "{CERT_SELECT}{filter} ORDER BY c.name LIMIT ${} OFFSET ${}",
                    n + 1,
                    n + 2
                );
                let mut all = params;
                all.push(i64::from(page.limit).into());
                all.push(i64::from(page.offset).into());
                let found = c.query(&sql, &all)?;
                let results = found
                    .iter()
                    .map(|r| cert_row(c, r))
                    .collect::<Result<Vec<_>>>()?;
                Ok(Page { count, results })
            })
            .await
    }

    /// Stores a certificate after validating it ([`parse_cert`]).
    pub async fn create_cert(
        &self,
        caller: &User,
        name: &str,
        certificate: &str,
        key: &str,
    ) -> Result<Cert> {
        check_cert_name(name)?;
        let parsed = parse_cert(certificate, key)?;
        let san = serde_json::to_string(&parsed.san).map_err(|e| Error::Internal(e.to_string()))?;
        let (caller, name, certificate, key) = (
            caller.clone(),
            name.to_string(),
            certificate.to_string(),
            key.to_string(),
        );
        self.store
            .write(move |c| {
                let t = now();
                let r = c.execute(
                    "INSERT INTO certs (uuid, name, owner_id, certificate, key, common_name, san, fingerprint, issuer, subject, starts, expires, created, updated) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
                    &[
                        uuid::Uuid::new_v4().to_string().into(),
                        name.as_str().into(),
                        caller.id.into(),
                        certificate.into(),
                        key.into(),
                        parsed.common_name.into(),
                        san.into(),
                        parsed.fingerprint.into(),
                        parsed.issuer.into(),
                        parsed.subject.into(),
                        parsed.starts.into(),
                        parsed.expires.into(),
                        t.as_str().into(),
                        t.into(),
                    ],
                );
                if let Err(StoreError::Unique(_)) = r {
                    return Err(Error::invalid(
                        "name",
                        &name,
                        "certificate with this name already exists.",
                    ));
                }
                r?;
                Ok(cert_for(c, &caller, &name)?.1)
            })
            .await
    }

    /// One certificate.
    pub async fn get_cert(&self, caller: &User, name: &str) -> Result<Cert> {
        let (caller, name) = (caller.clone(), name.to_string());
        self.store
            .read(move |c| Ok(cert_for(c, &caller, &name)?.1))
            .await
    }

    /// Deletes a certificate, detaching it from its domains first.
    pub async fn delete_cert(&self, caller: &User, name: &str) -> Result<()> {
        let (caller, name) = (caller.clone(), name.to_string());
        let apps = self
            .store
            .write(move |c| {
                let (uuid, _) = cert_for(c, &caller, &name)?;
                let apps: Vec<String> = c
                    .query(
                        "SELECT DISTINCT app_uuid FROM domains WHERE cert_uuid = $1",
                        &[uuid.as_str().into()],
                    )?
                    .iter()
                    .map(|r| r.text(0))
                    .collect();
                c.execute(
                    "UPDATE domains SET cert_uuid = NULL, updated = $2 WHERE cert_uuid = $1",
                    &[uuid.as_str().into(), now().into()],
                )?;
                c.execute("DELETE FROM certs WHERE uuid = $1", &[uuid.into()])?;
                Ok::<_, Error>(apps)
            })
            .await?;
        for app in apps {
            self.notify(&app);
        }
        Ok(())
    }

    /// Attaches a certificate to a domain (one certificate per domain, as in Deis).
    pub async fn attach_cert(&self, caller: &User, name: &str, domain: &str) -> Result<()> {
        let domain = domain.trim().trim_end_matches('.').to_string();
        if domain.is_empty() {
            return Err(Error::invalid(
                "domain",
                &domain,
                "give the domain to attach to, e.g. www.example.com",
            ));
        }
        let (caller, name) = (caller.clone(), name.to_string());
        let app = self
            .store
            .write(move |c| {
                let (uuid, _) = cert_for(c, &caller, &name)?;
                let (app, attached) = domain_for(c, &caller, &domain)?;
                if attached.is_some() {
                    return Err(Error::Conflict(
                        "Domain already has a certificate attached to it".into(),
                    ));
                }
                c.execute(
                    "UPDATE domains SET cert_uuid = $1, updated = $3 WHERE domain = $2",
                    &[uuid.into(), domain.as_str().into(), now().into()],
                )?;
                Ok::<_, Error>(app)
            })
            .await?;
        self.notify(&app);
        Ok(())
    }

    /// Detaches a certificate from a domain.
    pub async fn detach_cert(&self, caller: &User, name: &str, domain: &str) -> Result<()> {
        let (caller, name, domain) = (caller.clone(), name.to_string(), domain.to_string());
        let app = self
            .store
            .write(move |c| {
                let (uuid, _) = cert_for(c, &caller, &name)?;
                let (app, attached) = domain_for(c, &caller, &domain)?;
                if attached.as_deref() != Some(uuid.as_str()) {
                    return Err(Error::NotFound(format!(
                        "certificate {name:?} is not attached to {domain:?} (see deis certs:info {name})"
                    )));
                }
                c.execute(
                    "UPDATE domains SET cert_uuid = NULL, updated = $2 WHERE domain = $1",
                    &[domain.as_str().into(), now().into()],
                )?;
                Ok::<_, Error>(app)
            })
            .await?;
        self.notify(&app);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(names: &[&str]) -> (String, String) {
        let c = rcgen::generate_simple_self_signed(
            names.iter().map(|n| n.to_string()).collect::<Vec<_>>(),
        )
        .unwrap();
        (c.cert.pem(), c.signing_key.serialize_pem())
    }

    #[test]
    fn parses_a_matching_pair() {
        let (cert, key) = pair(&["www.example.com", "example.com"]);
        let p = parse_cert(&cert, &key).unwrap();
        assert_eq!(p.san, vec!["www.example.com", "example.com"]);
        assert_eq!(p.fingerprint.len(), 32 * 3 - 1);
        assert!(p.subject.contains("CN="), "{}", p.subject);
        assert!(p.starts.ends_with('Z') && p.expires > p.starts);
    }

    /// Guards that a key that is not the certificate's is refused with the reason.
    #[test]
    fn refuses_a_mismatched_key() {
        let (cert, _) = pair(&["a.example.com"]);
        let (_, other) = pair(&["b.example.com"]);
        let e = parse_cert(&cert, &other).unwrap_err();
        assert_eq!(e.http_status(), 400);
        assert!(e.to_string().contains("does not match"), "{e}");
        assert!(matches!(e, Error::Invalid { field: "key", .. }));
    }

    #[test]
    fn refuses_garbage() {
        let (cert, key) = pair(&["a.example.com"]);
        for (c, k, field) in [
            ("nope", key.as_str(), "certificate"),
            ("", key.as_str(), "certificate"),
            (
                "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
                key.as_str(),
                "certificate",
            ),
            (cert.as_str(), "nope", "key"),
            (cert.as_str(), "", "key"),
        ] {
            match parse_cert(c, k) {
                Err(Error::Invalid { field: f, .. }) => assert_eq!(f, field, "{c:?} {k:?}"),
                other => panic!("{c:?} {k:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn names() {
        check_cert_name("www-example-com").unwrap();
        for bad in ["", "Www", "a_b", "a.b"] {
            assert!(check_cert_name(bad).is_err(), "{bad}");
        }
    }
}
