//! Image references (`[host[:port]/]path[:tag][@digest]`, the docker/OCI distribution
//! grammar) with Docker's defaults, and the repository-name and tag grammars.

use std::fmt;
use std::str::FromStr;

use crate::digest::Digest;
use crate::error::{Error, Result, shown};

/// Longest image reference accepted, as written.
pub const MAX_REFERENCE_LEN: usize = 1024;
/// Longest repository name accepted (distribution's limit).
pub const MAX_NAME_LEN: usize = 255;
/// Longest tag accepted.
pub const MAX_TAG_LEN: usize = 128;
/// Longest registry `host[:port]` accepted (a DNS name is at most 253 characters).
pub const MAX_HOST_LEN: usize = 255;
/// The registry of references that name none.
pub const DOCKER_HUB: &str = "docker.io";

const NAME_RULE: &str =
    "path components are lowercase [a-z0-9] runs joined by '.', '_', '__' or '-', separated by '/'";
const TAG_RULE: &str = "tags are 1-128 of [A-Za-z0-9_.-], not starting with . or -";
const HOST_RULE: &str = "hosts are dot-separated labels of [A-Za-z0-9-] not starting or ending with '-', or a bracketed IPv6 address, with an optional :port";

fn is_lower_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// Validates a repository name: `/`-separated components of `[a-z0-9]+` joined by `.`, `_`,
/// `__` or `-+` separators, at most 255 characters.
pub fn validate_name(name: &str) -> Result<()> {
    let bad = |reason| Error::Name {
        value: shown(name),
        reason,
    };
    if name.is_empty() {
        return Err(bad("empty"));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(bad("longer than 255 characters"));
    }
    for comp in name.split('/') {
        let b = comp.as_bytes();
        if b.is_empty() {
            return Err(bad(
                "empty path component (leading, trailing or doubled '/')",
            ));
        }
        if !is_lower_alnum(b[0]) || !is_lower_alnum(b[b.len() - 1]) {
            return Err(bad(NAME_RULE));
        }
        let mut i = 0;
        while i < b.len() {
            if is_lower_alnum(b[i]) {
                i += 1;
                continue;
            }
            // A separator: ".", "_", "__" or a run of "-", then an alphanumeric.
            match b[i] {
                b'.' => i += 1,
                b'_' => i += if b.get(i + 1) == Some(&b'_') { 2 } else { 1 },
                b'-' => {
                    while b.get(i) == Some(&b'-') {
                        i += 1;
                    }
                }
                _ => return Err(bad(NAME_RULE)),
            }
            if !b.get(i).copied().is_some_and(is_lower_alnum) {
                return Err(bad(NAME_RULE));
            }
        }
    }
    Ok(())
}

/// Validates a tag: `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`.
pub fn validate_tag(tag: &str) -> Result<()> {
    let b = tag.as_bytes();
    let ok = !b.is_empty()
        && b.len() <= MAX_TAG_LEN
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(Error::Tag {
            value: shown(tag),
            reason: TAG_RULE,
        })
    }
}

/// Validates a registry `host[:port]`: a DNS name or IPv4 address, or `[IPv6]`, and a port
/// of 1-65535 when given.
pub fn validate_host(host: &str) -> Result<()> {
    let bad = |reason| Error::Host {
        value: shown(host),
        reason,
    };
    if host.is_empty() {
        return Err(bad("empty"));
    }
    if host.len() > MAX_HOST_LEN {
        return Err(bad("longer than 255 characters"));
    }
    let (name, port) = if let Some(v6) = host.strip_prefix('[') {
        let Some((addr, rest)) = v6.split_once(']') else {
            return Err(bad(HOST_RULE));
        };
        let addr_ok = addr.contains(':')
            && addr
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || matches!(b, b':' | b'.'));
        if !addr_ok {
            return Err(bad(HOST_RULE));
        }
        match rest {
            "" => (None, None),
            _ => match rest.strip_prefix(':') {
                Some(p) => (None, Some(p)),
                None => return Err(bad(HOST_RULE)),
            },
        }
    } else {
        match host.split_once(':') {
            Some((n, p)) => (Some(n), Some(p)),
            None => (Some(host), None),
        }
    };
    if let Some(name) = name {
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        if !name.split('.').all(label_ok) {
            return Err(bad(HOST_RULE));
        }
    }
    if let Some(p) = port {
        let ok = (1..=5).contains(&p.len())
            && p.bytes().all(|b| b.is_ascii_digit())
            && p.parse::<u32>().is_ok_and(|n| (1..=65_535).contains(&n));
        if !ok {
            return Err(bad("the port must be 1-65535"));
        }
    }
    Ok(())
}

/// The host a registry's API is served on: Docker Hub's differs from its name.
pub fn api_host(registry: &str) -> &str {
    if registry == DOCKER_HUB {
        "registry-1.docker.io"
    } else {
        registry
    }
}

/// Whether a registry `host[:port]` is on this machine (`localhost`, `127.*`, `[::1]`).
pub fn is_loopback(registry: &str) -> bool {
    let host = match registry.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => registry,
    };
    host == "localhost" || host.starts_with("127.") || host == "[::1]"
}

/// A parsed image reference with Docker's defaults applied: Docker Hub when no registry is
/// named, `library/` for its one-component names, `latest` when neither tag nor digest is
/// given.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    /// Registry `host[:port]` as written, or `docker.io`.
    pub registry: String,
    /// Repository path.
    pub repository: String,
    /// Tag, when given (or `latest` when neither tag nor digest is).
    pub tag: Option<String>,
    /// Digest, when given.
    pub digest: Option<Digest>,
}

impl Reference {
    /// Parses a reference.
    pub fn parse(s: &str) -> Result<Self> {
        let bad = |reason| Error::Reference {
            value: shown(s),
            reason,
        };
        if s.is_empty() {
            return Err(bad("empty"));
        }
        if s.len() > MAX_REFERENCE_LEN {
            return Err(bad("longer than 1024 characters"));
        }
        if s.trim() != s {
            return Err(bad("padded with spaces"));
        }
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => (r, Some(Digest::parse(d)?)),
            None => (s, None),
        };
        // A tag is after the last ':' that follows the last '/'; an earlier ':' is a port.
        let slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[slash..].rfind(':') {
            Some(i) => (&rest[..slash + i], Some(&rest[slash + i + 1..])),
            None => (rest, None),
        };
        if let Some(t) = tag {
            validate_tag(t)?;
        }
        // Docker's rule: the first component names a registry when it looks like a host.
        let (registry, repository) = match name.split_once('/') {
            Some((first, path))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                validate_host(first)?;
                (first, path.to_string())
            }
            _ => (DOCKER_HUB, name.to_string()),
        };
        validate_name(&repository)?;
        let repository = if registry == DOCKER_HUB && !repository.contains('/') {
            let r = format!("library/{repository}");
            // Only the length can fail here: the prefix is a valid component.
            validate_name(&r)?;
            r
        } else {
            repository
        };
        let tag = match (tag, &digest) {
            (None, None) => Some("latest".to_string()),
            (t, _) => t.map(str::to_string),
        };
        Ok(Reference {
            registry: registry.to_string(),
            repository,
            tag,
            digest,
        })
    }

    /// The host the registry API is served on (Docker Hub's differs from its name).
    pub fn api_host(&self) -> &str {
        api_host(&self.registry)
    }

    /// Whether the registry is on this machine (where plain HTTP is allowed).
    pub fn is_loopback(&self) -> bool {
        is_loopback(&self.registry)
    }

    /// What to ask the registry for: the digest if given, else the tag.
    pub fn reference(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".to_string(),
        }
    }
}

/// The full normalised form: `registry/repository[:tag][@digest]`.
impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

impl FromStr for Reference {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Reference::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    /// (registry, repository, tag, digest)
    type Parts = (String, String, Option<String>, Option<String>);

    fn parts(s: &str) -> Parts {
        let r = Reference::parse(s).unwrap();
        (
            r.registry,
            r.repository,
            r.tag,
            r.digest.map(|d| d.to_string()),
        )
    }

    #[test]
    fn good_references() {
        let s = |v: &str| v.to_string();
        let table: Vec<(String, Parts)> = vec![
            (
                s("busybox"),
                (
                    s("docker.io"),
                    s("library/busybox"),
                    Some(s("latest")),
                    None,
                ),
            ),
            (
                s("busybox:1.36"),
                (s("docker.io"), s("library/busybox"), Some(s("1.36")), None),
            ),
            (
                s("library/busybox"),
                (
                    s("docker.io"),
                    s("library/busybox"),
                    Some(s("latest")),
                    None,
                ),
            ),
            (
                s("docker.io/busybox"),
                (
                    s("docker.io"),
                    s("library/busybox"),
                    Some(s("latest")),
                    None,
                ),
            ),
            (
                s("team/api"),
                (s("docker.io"), s("team/api"), Some(s("latest")), None),
            ),
            (
                s("registry.example.com/team/api:1.4"),
                (
                    s("registry.example.com"),
                    s("team/api"),
                    Some(s("1.4")),
                    None,
                ),
            ),
            (
                format!("127.0.0.1:5000/api@{D}"),
                (s("127.0.0.1:5000"), s("api"), None, Some(s(D))),
            ),
            (
                format!("localhost/x:v1@{D}"),
                (s("localhost"), s("x"), Some(s("v1")), Some(s(D))),
            ),
            (
                s("localhost:5000/a/b/c:v1.0-rc_1"),
                (s("localhost:5000"), s("a/b/c"), Some(s("v1.0-rc_1")), None),
            ),
            (
                s("[::1]:5000/x"),
                (s("[::1]:5000"), s("x"), Some(s("latest")), None),
            ),
            (
                s("Reg.Example.com/x"),
                (s("Reg.Example.com"), s("x"), Some(s("latest")), None),
            ),
            (
                s("a_b__c---d/f0.g"),
                (
                    s("docker.io"),
                    s("a_b__c---d/f0.g"),
                    Some(s("latest")),
                    None,
                ),
            ),
            // A lone `host:port` is Docker Hub's `library/host` at tag `port`, as in Docker.
            (
                s("localhost:5000"),
                (
                    s("docker.io"),
                    s("library/localhost"),
                    Some(s("5000")),
                    None,
                ),
            ),
        ];
        for (input, want) in table {
            assert_eq!(parts(&input), want, "{input}");
        }
        let sha512 = format!("sha512:{}", "ab".repeat(64));
        let r = Reference::parse(&format!("example.com/x@{sha512}")).unwrap();
        assert_eq!(r.digest.unwrap().to_string(), sha512);
    }

    #[test]
    fn bad_references() {
        let table = [
            ("", "invalid image reference \"\": empty"),
            (" x", "invalid image reference \" x\": padded with spaces"),
            (
                "UPPER/x",
                "invalid repository name \"UPPER/x\": path components are lowercase [a-z0-9] runs joined by '.', '_', '__' or '-', separated by '/'",
            ),
            (
                "a/../b",
                "invalid repository name \"a/../b\": path components are lowercase [a-z0-9] runs joined by '.', '_', '__' or '-', separated by '/'",
            ),
            (
                "a..b",
                "invalid repository name \"a..b\": path components are lowercase [a-z0-9] runs joined by '.', '_', '__' or '-', separated by '/'",
            ),
            (
                "x:bad tag",
                "invalid tag \"bad tag\": tags are 1-128 of [A-Za-z0-9_.-], not starting with . or -",
            ),
            (
                "a:-x",
                "invalid tag \"-x\": tags are 1-128 of [A-Za-z0-9_.-], not starting with . or -",
            ),
            (
                "x:",
                "invalid tag \"\": tags are 1-128 of [A-Za-z0-9_.-], not starting with . or -",
            ),
            (
                "x@sha256:12",
                "invalid digest \"sha256:12\": want sha256:<64 lowercase hex digits>",
            ),
            (
                "x@md5:00",
                "invalid digest \"md5:00\": unsupported algorithm \"md5\" (want sha256 or sha512)",
            ),
            ("reg.io/", "invalid repository name \"\": empty"),
            (
                "a//b",
                "invalid repository name \"a//b\": empty path component (leading, trailing or doubled '/')",
            ),
            (
                "host.com/-x",
                "invalid repository name \"-x\": path components are lowercase [a-z0-9] runs joined by '.', '_', '__' or '-', separated by '/'",
            ),
            (
                "a b",
                "invalid repository name \"a b\": path components are lowercase [a-z0-9] runs joined by '.', '_', '__' or '-', separated by '/'",
            ),
            (
                "bad_host.com/x",
                "invalid registry host \"bad_host.com\": hosts are dot-separated labels of [A-Za-z0-9-] not starting or ending with '-', or a bracketed IPv6 address, with an optional :port",
            ),
            // A first component with a '.' is a host, as in Docker.
            (
                "a.b_c/x",
                "invalid registry host \"a.b_c\": hosts are dot-separated labels of [A-Za-z0-9-] not starting or ending with '-', or a bracketed IPv6 address, with an optional :port",
            ),
            (
                "host.com:99999/x",
                "invalid registry host \"host.com:99999\": the port must be 1-65535",
            ),
            (
                "host.com:/x",
                "invalid registry host \"host.com:\": the port must be 1-65535",
            ),
            (
                "[zz]:5000/x",
                "invalid registry host \"[zz]:5000\": hosts are dot-separated labels of [A-Za-z0-9-] not starting or ending with '-', or a bracketed IPv6 address, with an optional :port",
            ),
        ];
        for (input, msg) in table {
            assert_eq!(
                Reference::parse(input).unwrap_err().to_string(),
                msg,
                "{input:?}"
            );
        }
        let long = format!("x:{}", "a".repeat(1100));
        assert_eq!(
            Reference::parse(&long).unwrap_err(),
            Error::Reference {
                value: shown(&long),
                reason: "longer than 1024 characters"
            }
        );
    }

    #[test]
    fn hosts_and_loopback() {
        let r = Reference::parse("busybox").unwrap();
        assert_eq!(r.api_host(), "registry-1.docker.io");
        assert!(!r.is_loopback());
        for (s, lo) in [
            ("127.0.0.1:5000/x", true),
            ("localhost/x", true),
            ("[::1]:80/x", true),
            ("registry.example.com/x", false),
            ("127.example.com/x", true),
        ] {
            assert_eq!(Reference::parse(s).unwrap().is_loopback(), lo, "{s}");
        }
        let r = Reference::parse("registry.example.com/team/api").unwrap();
        assert_eq!(r.reference(), "latest");
        assert_eq!(r.to_string(), "registry.example.com/team/api:latest");
        let r = Reference::parse(&format!("localhost/x@{D}")).unwrap();
        assert_eq!(r.reference(), D);
        assert_eq!(r.to_string(), format!("localhost/x@{D}"));
    }

    #[test]
    fn names_and_tags() {
        for good in [
            "a",
            "api",
            "team/api",
            "a.b_c__d---e/f0",
            "x/y/z",
            "library/busybox",
        ] {
            validate_name(good).unwrap();
        }
        for bad in [
            "", "A", "a/", "/a", "a//b", "..", "a/../b", "a..b", "a___b", "-a", "a-", "a/.b",
            "a b", "a%2fb", "a_-b",
        ] {
            assert!(validate_name(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            validate_name(&"a".repeat(256)).unwrap_err().to_string(),
            format!(
                "invalid repository name \"{}…\": longer than 255 characters",
                "a".repeat(200)
            )
        );
        for good in ["latest", "v1.0", "_x", "A-b.c_d", &"t".repeat(128)] {
            validate_tag(good).unwrap();
        }
        for bad in ["", ".x", "-x", "a/b", "a b", "ü", &"t".repeat(129)] {
            assert!(validate_tag(bad).is_err(), "{bad:?}");
        }
        for good in [
            "a",
            "a.b",
            "a-b.c:1",
            "127.0.0.1:65535",
            "[::1]",
            "[fe80::1]:5000",
            "x:1",
        ] {
            validate_host(good).unwrap();
        }
        for bad in [
            "", ".a", "a.", "-a.b", "a:0", "a:65536", "a:1:2", "[::1", "[]", "[::1]x", "a b",
        ] {
            assert!(validate_host(bad).is_err(), "{bad:?}");
        }
    }
}
