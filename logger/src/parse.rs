//! Pure parsers over bytes: CRI and Docker json-file log lines, RFC 3339 timestamps and kubelet's
//! log file names. No IO; every input is accepted or rejected without panicking.

use nom::{
    IResult, Parser,
    branch::alt,
    bytes::complete::{tag, take_while, take_while_m_n, take_while1},
    combinator::{map_res, opt},
};

/// Which output stream of the container a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
    /// Not known (a line that could not be parsed).
    Unknown,
}

impl Stream {
    /// The lowercase name (`stdout`, `stderr`, `unknown`).
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
            Stream::Unknown => "unknown",
        }
    }
}

/// One physical CRI line: `<RFC3339Nano> <stream> <tags> <message>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CriLine<'a> {
    /// Unix time in nanoseconds.
    pub time_unix_nanos: i64,
    /// stdout or stderr.
    pub stream: Stream,
    /// `P`: the line continues in the next physical line.
    pub partial: bool,
    /// The text, without the trailing newline.
    pub message: &'a [u8],
}

/// One Docker json-file line: `{"log":"...","stream":"stdout","time":"..."}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerLine {
    /// Unix time in nanoseconds.
    pub time_unix_nanos: i64,
    /// stdout or stderr.
    pub stream: Stream,
    /// Docker splits lines longer than 16 KiB: the pieces but the last lack the newline.
    pub partial: bool,
    /// The decoded text, without the trailing newline.
    pub message: Vec<u8>,
}

/// A physical line in whichever format it turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed<'a> {
    /// A CRI line.
    Cri(CriLine<'a>),
    /// A Docker json-file line.
    Docker(DockerLine),
    /// Neither: kept as raw text, never dropped.
    Raw(&'a [u8]),
}

/// Parses one physical line (without its `\n`), falling back to raw text.
pub fn parse_line(line: &[u8]) -> Parsed<'_> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.first() == Some(&b'{') {
        if let Some(docker) = docker_json_line(line) {
            return Parsed::Docker(docker);
        }
    } else if let Some(cri) = cri_line(line) {
        return Parsed::Cri(cri);
    }
    Parsed::Raw(line)
}

/// Parses a CRI line (without its `\n`); `None` when it is not one.
pub fn cri_line(line: &[u8]) -> Option<CriLine<'_>> {
    let parsed: IResult<&[u8], CriLine<'_>> = (|i| {
        let (i, time_unix_nanos) = rfc3339_nanos(i)?;
        let (i, _) = tag(&b" "[..]).parse(i)?;
        let (i, stream) = alt((
            tag(&b"stdout"[..]).map(|_| Stream::Stdout),
            tag(&b"stderr"[..]).map(|_| Stream::Stderr),
        ))
        .parse(i)?;
        let (i, _) = tag(&b" "[..]).parse(i)?;
        // Tags are `:`-separated; the first says full (F) or partial (P).
        let (i, tags) = take_while1(|c: u8| c != b' ').parse(i)?;
        let partial = match tags.split(|&c| c == b':').next() {
            Some(b"P") => true,
            Some(b"F") => false,
            _ => {
                return Err(nom::Err::Error(nom::error::Error::new(
                    i,
                    nom::error::ErrorKind::Tag,
                )));
            }
        };
        // The message follows one space; an empty message may lack it.
        let message = i.strip_prefix(b" ").unwrap_or(i);
        if !i.is_empty() && i[0] != b' ' {
            return Err(nom::Err::Error(nom::error::Error::new(
                i,
                nom::error::ErrorKind::Space,
            )));
        }
        Ok((
            &i[i.len()..],
            CriLine {
                time_unix_nanos,
                stream,
                partial,
                message,
            },
        ))
    })(line);
    parsed.ok().map(|(_, l)| l)
}

fn digits(n: usize) -> impl FnMut(&[u8]) -> IResult<&[u8], u32> {
    move |i| {
        map_res(
            take_while_m_n(n, n, |c: u8| c.is_ascii_digit()),
            |d: &[u8]| {
                d.iter()
                    .try_fold(0u32, |acc, &c| {
                        acc.checked_mul(10)?.checked_add(u32::from(c - b'0'))
                    })
                    .ok_or(())
            },
        )
        .parse(i)
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        _ => 28,
    }
}

/// Parses an RFC 3339 timestamp with optional fraction (up to nanoseconds) into Unix nanoseconds.
pub fn rfc3339_nanos(i: &[u8]) -> IResult<&[u8], i64> {
    let fail = |i| nom::Err::Error(nom::error::Error::new(i, nom::error::ErrorKind::Verify));
    let start = i;
    let (i, year) = digits(4)(i)?;
    let (i, _) = tag(&b"-"[..]).parse(i)?;
    let (i, month) = digits(2)(i)?;
    let (i, _) = tag(&b"-"[..]).parse(i)?;
    let (i, day) = digits(2)(i)?;
    let (i, _) = alt((tag(&b"T"[..]), tag(&b"t"[..]), tag(&b" "[..]))).parse(i)?;
    let (i, hour) = digits(2)(i)?;
    let (i, _) = tag(&b":"[..]).parse(i)?;
    let (i, minute) = digits(2)(i)?;
    let (i, _) = tag(&b":"[..]).parse(i)?;
    let (i, second) = digits(2)(i)?;
    let (i, fraction) = opt((tag(&b"."[..]), take_while1(|c: u8| c.is_ascii_digit()))).parse(i)?;
    let (i, offset_secs) = alt((
        alt((tag(&b"Z"[..]), tag(&b"z"[..]))).map(|_| 0i64),
        (
            alt((tag(&b"+"[..]), tag(&b"-"[..]))),
            digits(2),
            tag(&b":"[..]),
            digits(2),
        )
            .map(|(sign, h, _, m)| {
                let s = i64::from(h) * 3600 + i64::from(m) * 60;
                if sign == b"-" { -s } else { s }
            }),
    ))
    .parse(i)?;
    let year = i64::from(year);
    if !(1..=12).contains(&month)
        || day == 0
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
        || offset_secs.abs() >= 24 * 3600
    {
        return Err(fail(start));
    }
    let mut nanos: i64 = 0;
    if let Some((_, frac)) = fraction {
        // Digits past nanoseconds are accepted and ignored.
        for k in 0..9 {
            let d = frac.get(k).map_or(0, |&c| i64::from(c - b'0'));
            nanos = nanos * 10 + d;
        }
    }
    let secs = days_from_civil(year, month, day) * 86_400
        + i64::from(hour) * 3600
        + i64::from(minute) * 60
        + i64::from(second)
        - offset_secs;
    Ok((i, secs * 1_000_000_000 + nanos))
}

/// Formats Unix nanoseconds as RFC 3339 UTC with nanoseconds (`2016-10-06T00:17:09.669794202Z`).
pub fn format_rfc3339_nanos(nanos: i64) -> String {
    let secs = nanos.div_euclid(1_000_000_000);
    let frac = nanos.rem_euclid(1_000_000_000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // Inverse of days_from_civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{frac:09}Z",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    )
}

/// Nesting deeper than this in a Docker line makes it raw text.
const MAX_JSON_DEPTH: usize = 16;

fn ws(i: &[u8]) -> IResult<&[u8], &[u8]> {
    take_while(|c: u8| matches!(c, b' ' | b'\t' | b'\r' | b'\n')).parse(i)
}

fn hex4(i: &[u8]) -> IResult<&[u8], u32> {
    map_res(
        take_while_m_n(4, 4, |c: u8| c.is_ascii_hexdigit()),
        |h: &[u8]| u32::from_str_radix(std::str::from_utf8(h).map_err(|_| ())?, 16).map_err(|_| ()),
    )
    .parse(i)
}

/// A JSON string, decoded to bytes; raw bytes (also invalid UTF-8) pass through.
fn json_string(i: &[u8]) -> IResult<&[u8], Vec<u8>> {
    let (mut i, _) = tag(&b"\""[..]).parse(i)?;
    let mut out = Vec::new();
    loop {
        let (rest, chunk) = take_while(|c: u8| c != b'"' && c != b'\\').parse(i)?;
        out.extend_from_slice(chunk);
        i = rest;
        match i.first() {
            Some(b'"') => return Ok((&i[1..], out)),
            Some(b'\\') => {
                let esc = *i.get(1).ok_or_else(|| {
                    nom::Err::Error(nom::error::Error::new(i, nom::error::ErrorKind::Eof))
                })?;
                i = &i[2..];
                let simple = match esc {
                    b'"' => Some(b'"'),
                    b'\\' => Some(b'\\'),
                    b'/' => Some(b'/'),
                    b'b' => Some(8),
                    b'f' => Some(12),
                    b'n' => Some(b'\n'),
                    b'r' => Some(b'\r'),
                    b't' => Some(b'\t'),
                    _ => None,
                };
                if let Some(c) = simple {
                    out.push(c);
                    continue;
                }
                if esc != b'u' {
                    return Err(nom::Err::Error(nom::error::Error::new(
                        i,
                        nom::error::ErrorKind::Escaped,
                    )));
                }
                let (rest, hi) = hex4(i)?;
                i = rest;
                let mut code = hi;
                if (0xD800..0xDC00).contains(&hi) {
                    // A high surrogate pairs with a following `\uDC00`..`\uDFFF`.
                    if let Ok((rest, (_, lo))) = (tag(&b"\\u"[..]), hex4).parse(i)
                        && (0xDC00..0xE000).contains(&lo)
                    {
                        code = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
                        i = rest;
                    }
                }
                let ch = char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER);
                let mut buf = [0u8; 4];
                out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
            }
            _ => {
                return Err(nom::Err::Error(nom::error::Error::new(
                    i,
                    nom::error::ErrorKind::Eof,
                )));
            }
        }
    }
}

/// Skips any JSON value (bounded nesting).
fn skip_json_value(i: &[u8], depth: usize) -> IResult<&[u8], ()> {
    let err = |i| nom::Err::Error(nom::error::Error::new(i, nom::error::ErrorKind::TooLarge));
    if depth > MAX_JSON_DEPTH {
        return Err(err(i));
    }
    let (i, _) = ws(i)?;
    match i.first() {
        Some(b'"') => json_string(i).map(|(i, _)| (i, ())),
        Some(open @ (b'{' | b'[')) => {
            let close = if *open == b'{' { b'}' } else { b']' };
            let mut i = &i[1..];
            let (rest, _) = ws(i)?;
            if rest.first() == Some(&close) {
                return Ok((&rest[1..], ()));
            }
            loop {
                if close == b'}' {
                    let (rest, _) = ws(i)?;
                    let (rest, _) = json_string(rest)?;
                    let (rest, _) = ws(rest)?;
                    let (rest, _) = tag(&b":"[..]).parse(rest)?;
                    i = rest;
                }
                let (rest, ()) = skip_json_value(i, depth + 1)?;
                let (rest, _) = ws(rest)?;
                match rest.first() {
                    Some(b',') => i = &rest[1..],
                    Some(c) if *c == close => return Ok((&rest[1..], ())),
                    _ => return Err(err(rest)),
                }
            }
        }
        _ => take_while1(|c: u8| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'+' | b'.'))
            .parse(i)
            .map(|(i, _)| (i, ())),
    }
}

/// Parses a Docker json-file line; `None` when it is not one (it is then kept raw).
pub fn docker_json_line(line: &[u8]) -> Option<DockerLine> {
    let mut log = None;
    let mut stream = None;
    let mut time = None;
    let (mut i, _) = (ws, tag(&b"{"[..])).parse(line).ok()?;
    loop {
        let (rest, _) = ws(i).ok()?;
        let (rest, key) = json_string(rest).ok()?;
        let (rest, _) = (ws, tag(&b":"[..]), ws).parse(rest).ok()?;
        let rest = match key.as_slice() {
            b"log" => {
                let (rest, v) = json_string(rest).ok()?;
                log = Some(v);
                rest
            }
            b"stream" => {
                let (rest, v) = json_string(rest).ok()?;
                stream = Some(match v.as_slice() {
                    b"stdout" => Stream::Stdout,
                    b"stderr" => Stream::Stderr,
                    _ => Stream::Unknown,
                });
                rest
            }
            b"time" => {
                let (rest, v) = json_string(rest).ok()?;
                let (tail, t) = rfc3339_nanos(&v).ok()?;
                if !tail.is_empty() {
                    return None;
                }
                time = Some(t);
                rest
            }
            _ => skip_json_value(rest, 1).ok()?.0,
        };
        let (rest, _) = ws(rest).ok()?;
        match rest.first() {
            Some(b',') => i = &rest[1..],
            Some(b'}') => {
                let (tail, _) = ws(&rest[1..]).ok()?;
                if !tail.is_empty() {
                    return None;
                }
                break;
            }
            _ => return None,
        }
    }
    let mut message = log?;
    let partial = message.last() != Some(&b'\n');
    if !partial {
        message.pop();
    }
    Some(DockerLine {
        time_unix_nanos: time?,
        stream: stream.unwrap_or(Stream::Unknown),
        partial,
        message,
    })
}

/// The parts of a kubelet log file name `<pod>_<namespace>_<container>-<id>.log[.<suffix>]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileName {
    /// The pod's name.
    pub pod: String,
    /// The pod's namespace: the app.
    pub namespace: String,
    /// The container's name.
    pub container: String,
    /// The container's id.
    pub container_id: String,
    /// `Some(suffix)` for a rotated file `<name>.log.<suffix>`.
    pub rotation: Option<String>,
}

impl FileName {
    /// The name of the live file, without any rotation suffix: the container's log stream.
    pub fn base(&self) -> String {
        format!(
            "{}_{}_{}-{}.log",
            self.pod, self.namespace, self.container, self.container_id
        )
    }

    /// The app: the namespace.
    pub fn app(&self) -> &str {
        &self.namespace
    }

    /// The process type, from the pod's name `<app>-<type>-...`.
    pub fn process_type(&self) -> String {
        process_type(&self.namespace, &self.pod)
    }
}

pub use workflow_types::app::is_dns_label;

fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(is_dns_label)
}

/// Parses a kubelet log file name; `None` for anything else (also compressed rotations).
pub fn parse_file_name(name: &str) -> Option<FileName> {
    let (stem, rotation) = match name.find(".log") {
        Some(pos) => {
            let rest = &name[pos + 4..];
            if rest.is_empty() {
                (&name[..pos], None)
            } else {
                let suffix = rest.strip_prefix('.')?;
                let compressed = [".gz", ".zst", ".bz2", ".xz", ".zip"]
                    .iter()
                    .any(|ext| suffix.ends_with(ext));
                if suffix.is_empty() || compressed || suffix.contains('/') {
                    return None;
                }
                (&name[..pos], Some(suffix.to_string()))
            }
        }
        None => return None,
    };
    let mut parts = stem.split('_');
    let pod = parts.next()?;
    let namespace = parts.next()?;
    let container_and_id = parts.next()?;
    if parts.next().is_some() {
        return None;
    }
    let (container, container_id) = container_and_id.rsplit_once('-')?;
    if !is_dns_subdomain(pod)
        || !is_dns_label(namespace)
        || !is_dns_label(container)
        || container_id.is_empty()
        || !container_id.bytes().all(|c| c.is_ascii_alphanumeric())
    {
        return None;
    }
    Some(FileName {
        pod: pod.to_string(),
        namespace: namespace.to_string(),
        container: container.to_string(),
        container_id: container_id.to_string(),
        rotation,
    })
}

/// The process type of a pod named `<app>-<type>-...` in app `app`; empty when it does not say.
pub fn process_type(app: &str, pod: &str) -> String {
    pod.strip_prefix(app)
        .and_then(|rest| rest.strip_prefix('-'))
        .and_then(|rest| rest.split('-').next())
        .filter(|t| !t.is_empty())
        .unwrap_or_default()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const T0: i64 = 1_475_712_629_669_794_202; // 2016-10-06T00:10:29.669794202Z

    /// Expected (time, stream, partial, message).
    type Want = (i64, Stream, bool, &'static [u8]);

    #[test]
    fn cri_table() {
        let cases: &[(&[u8], Option<Want>)] = &[
            (
                b"2016-10-06T00:10:29.669794202Z stdout F hello world",
                Some((T0, Stream::Stdout, false, b"hello world")),
            ),
            (
                b"2016-10-06T00:10:29.669794202Z stderr P part",
                Some((T0, Stream::Stderr, true, b"part")),
            ),
            (
                b"2016-10-06T00:10:29.669794202Z stdout F",
                Some((T0, Stream::Stdout, false, b"")),
            ),
            (
                b"2016-10-06T00:10:29.669794202Z stdout F:x  two spaces",
                Some((T0, Stream::Stdout, false, b" two spaces")),
            ),
            (
                b"2016-10-06T02:10:29.669794202+02:00 stdout F tz",
                Some((T0, Stream::Stdout, false, b"tz")),
            ),
            (
                b"2016-10-06T00:10:29Z stdout F no fraction",
                Some((T0 - 669_794_202, Stream::Stdout, false, b"no fraction")),
            ),
            (
                b"2016-10-06T00:10:29.669794202Z stdout F bad \xff\x00 bytes",
                Some((T0, Stream::Stdout, false, b"bad \xff\x00 bytes")),
            ),
            (b"2016-10-06T00:10:29.669794202Z stdin F x", None),
            (b"2016-10-06T00:10:29.669794202Z stdout X x", None),
            (b"2016-10-06T00:10:29.669794202Z stdout Fx", None),
            (b"2016-13-06T00:10:29Z stdout F x", None),
            (b"2016-02-30T00:10:29Z stdout F x", None),
            (b"2016-10-06T00:10:29.669794202Zstdout F x", None),
            (b"hello", None),
            (b"", None),
        ];
        for (input, want) in cases {
            let got = cri_line(input).map(|l| (l.time_unix_nanos, l.stream, l.partial, l.message));
            assert_eq!(got, *want, "input {:?}", String::from_utf8_lossy(input));
        }
    }

    #[test]
    fn docker_table() {
        let cases: &[(&[u8], Option<Want>)] = &[
            (
                br#"{"log":"hello\n","stream":"stdout","time":"2016-10-06T00:10:29.669794202Z"}"#,
                Some((T0, Stream::Stdout, false, b"hello")),
            ),
            (
                br#"{"time":"2016-10-06T00:10:29.669794202Z","stream":"stderr","log":"a\"b\\c\u00e9\ud83d\ude00"}"#,
                Some((T0, Stream::Stderr, true, "a\"b\\c\u{e9}\u{1F600}".as_bytes())),
            ),
            (
                br#" { "log" : "x\n" , "attrs": {"k": [1, true, null, "v"]}, "stream":"stdout","time":"2016-10-06T00:10:29.669794202Z" } "#,
                Some((T0, Stream::Stdout, false, b"x")),
            ),
            (
                br#"{"log":"lone \udc00\n","stream":"stdout","time":"2016-10-06T00:10:29.669794202Z"}"#,
                Some((T0, Stream::Stdout, false, "lone \u{FFFD}".as_bytes())),
            ),
            (br#"{"log":"x\n","stream":"stdout"}"#, None),
            (br#"{"log":"x\n","stream":"stdout","time":"yesterday"}"#, None),
            (br#"{"log":"x\n","stream":"stdout","time":"2016-10-06T00:10:29Z"} tail"#, None),
            (br#"{"log":"x\q","stream":"stdout","time":"2016-10-06T00:10:29Z"}"#, None),
            (br#"{"log":"unterminated"#, None),
            (b"{", None),
        ];
        for (input, want) in cases {
            let got = docker_json_line(input)
                .map(|l| (l.time_unix_nanos, l.stream, l.partial, l.message.clone()));
            let want = want.map(|(t, s, p, m)| (t, s, p, m.to_vec()));
            assert_eq!(got, want, "input {:?}", String::from_utf8_lossy(input));
        }
    }

    #[test]
    fn deep_json_is_raw() {
        let mut line = br#"{"log":"x\n","time":"2016-10-06T00:10:29Z","a":"#.to_vec();
        line.extend(std::iter::repeat_n(b'[', 10_000));
        assert!(docker_json_line(&line).is_none());
        assert!(matches!(parse_line(&line), Parsed::Raw(_)));
    }

    #[test]
    fn file_name_table() {
        let id = "0123456789abcdef";
        let good = format!("hello-web-5d8c9-x7k2p_hello_web-{id}.log");
        let f = parse_file_name(&good).unwrap();
        assert_eq!(f.pod, "hello-web-5d8c9-x7k2p");
        assert_eq!(f.app(), "hello");
        assert_eq!(f.container, "web");
        assert_eq!(f.container_id, id);
        assert_eq!(f.rotation, None);
        assert_eq!(f.process_type(), "web");
        assert_eq!(f.base(), good);

        let rotated = parse_file_name(&format!(
            "my-app-worker-1_my-app_my-app-worker-{id}.log.20240101-120000"
        ))
        .unwrap();
        assert_eq!(rotated.app(), "my-app");
        assert_eq!(rotated.container, "my-app-worker");
        assert_eq!(rotated.process_type(), "worker");
        assert_eq!(rotated.rotation.as_deref(), Some("20240101-120000"));

        let other = parse_file_name(&format!("coredns-1_kube-system_coredns-{id}.log.1")).unwrap();
        assert_eq!(other.process_type(), "");

        for bad in [
            format!("hello-web-1_hello_web-{id}.log.1.gz"),
            format!("hello-web-1_hello_web-{id}.log."),
            format!("hello-web-1_hello_web-{id}.txt"),
            format!("hello-web-1_Hello_web-{id}.log"),
            format!("hello-web-1_hello_web{id}.log"),
            "hello-web-1_hello_web-.log".to_string(),
            format!("hello-web-1_hello_web-{id}_x.log"),
            format!("_hello_web-{id}.log"),
            "..".to_string(),
            String::new(),
        ] {
            assert_eq!(parse_file_name(&bad), None, "{bad}");
        }
    }

    #[test]
    fn timestamps_round_trip_table() {
        for (s, n) in [
            ("1970-01-01T00:00:00.000000000Z", 0),
            ("2016-10-06T00:10:29.669794202Z", T0),
            ("2000-02-29T23:59:59.999999999Z", 951_868_799_999_999_999),
            ("1969-12-31T23:59:59.000000001Z", -999_999_999),
        ] {
            assert_eq!(rfc3339_nanos(s.as_bytes()).unwrap().1, n, "{s}");
            assert_eq!(format_rfc3339_nanos(n), s);
        }
    }

    proptest! {
        #[test]
        fn any_bytes_never_panic(line in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse_line(&line);
            let _ = docker_json_line(&line);
            let _ = cri_line(&line);
            let _ = parse_file_name(&String::from_utf8_lossy(&line));
        }

        #[test]
        fn cri_round_trips(
            nanos in 0i64..4_000_000_000_000_000_000,
            stderr in any::<bool>(),
            partial in any::<bool>(),
            message in proptest::collection::vec(any::<u8>().prop_filter("no newline", |c| *c != b'\n'), 0..200),
        ) {
            let line = [
                format_rfc3339_nanos(nanos).as_bytes(),
                if stderr { b" stderr " } else { b" stdout " },
                if partial { b"P " } else { b"F " },
                &message,
            ].concat();
            let got = cri_line(&line).unwrap();
            prop_assert_eq!(got.time_unix_nanos, nanos);
            prop_assert_eq!(got.stream, if stderr { Stream::Stderr } else { Stream::Stdout });
            prop_assert_eq!(got.partial, partial);
            prop_assert_eq!(got.message, &message[..]);
        }

        #[test]
        fn docker_round_trips(nanos in 0i64..4_000_000_000_000_000_000, text in "\\PC{0,64}", newline in any::<bool>()) {
            let mut log = text.clone();
            if newline { log.push('\n'); }
            let time = format_rfc3339_nanos(nanos);
            let line = format!(r#"{{"log":{},"stream":"stderr","time":"{time}"}}"#, json_quote(&log));
            let got = docker_json_line(line.as_bytes()).unwrap();
            prop_assert_eq!(got.time_unix_nanos, nanos);
            prop_assert_eq!(got.partial, !newline);
            prop_assert_eq!(got.message, text.into_bytes());
        }

        #[test]
        fn file_names_round_trip(
            app in "[a-z][a-z0-9]{0,10}",
            ty in "[a-z][a-z0-9]{0,6}",
            hash in "[a-z0-9]{5}",
            id in "[0-9a-f]{12}",
            suffix in proptest::option::of("[0-9]{1,8}"),
        ) {
            let pod = format!("{app}-{ty}-{hash}");
            let mut name = format!("{pod}_{app}_{ty}-{id}.log");
            if let Some(s) = &suffix { name.push('.'); name.push_str(s); }
            let f = parse_file_name(&name).unwrap();
            prop_assert_eq!(f.app(), app.as_str());
            prop_assert_eq!(f.process_type(), ty);
            prop_assert_eq!(f.rotation, suffix);
            prop_assert_eq!(f.pod, pod);
        }
    }

    fn json_quote(s: &str) -> String {
        let mut out = String::from("\"");
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
                c => out.push(c),
            }
        }
        out.push('"');
        out
    }
}
