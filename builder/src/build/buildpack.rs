//! Heroku classic buildpacks: `bin/detect`, `bin/compile`, `bin/release`.
//!
//! The configured list is tried in order with `bin/detect BUILD_DIR`; `BUILDPACK_URL` in
//! the app's config selects one instead (a git URL with an optional `#ref`, cloned with the
//! real git, or a local directory). `bin/compile BUILD_DIR CACHE_DIR ENV_DIR` gets one file
//! per config var in ENV_DIR; `bin/release BUILD_DIR` may print YAML whose
//! `default_process_types` are merged under the Procfile (the Procfile wins).
//!
//! Two buildpacks are built in and need nothing downloaded: `builtin:procfile` (an app whose
//! Procfile runs scripts or static binaries) and `builtin:static` (a directory of HTML served by
//! busybox `httpd`, which the stack image must provide).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use tokio::process::Command;

use super::Output;
use super::run::{Limits, run_step};
use crate::error::{Error, Result};

/// A buildpack on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Buildpack {
    /// How it was named (list entry or `BUILDPACK_URL`).
    pub name: String,
    /// Its directory (holding `bin/`).
    pub dir: PathBuf,
}

/// The built-in buildpacks: name and (detect, compile, release) scripts.
const BUILTINS: &[(&str, &str, &str, &str)] = &[
    (
        "procfile",
        "#!/bin/sh\n[ -f \"$1/Procfile\" ] && echo Procfile && exit 0\nexit 1\n",
        "#!/bin/sh\necho \"Nothing to compile: the Procfile says how to run the app.\"\n",
        "#!/bin/sh\necho '--- {}'\n",
    ),
    (
        "static",
        "#!/bin/sh\n[ -f \"$1/index.html\" ] && echo 'Static HTML' && exit 0\nexit 1\n",
        "#!/bin/sh\necho \"Serving the files as they are.\"\n",
        "#!/bin/sh\nprintf -- '---\\ndefault_process_types:\\n  web: httpd -f -p ${PORT:-5000} -h /app\\n'\n",
    ),
];

/// The names of the built-in buildpacks (`builtin:<name>` in the configured list).
pub fn builtin_names() -> Vec<&'static str> {
    BUILTINS.iter().map(|b| b.0).collect()
}

/// Writes the built-in buildpack `name` under `root` and returns it.
pub fn materialize_builtin(name: &str, root: &Path) -> Result<Buildpack> {
    use std::os::unix::fs::PermissionsExt as _;
    let Some((_, detect, compile, release)) = BUILTINS.iter().find(|b| b.0 == name) else {
        return Err(Error::Config(format!(
            "unknown built-in buildpack {name:?} (built in: {})",
            builtin_names().join(", ")
        )));
    };
    let dir = root.join(format!("builtin-{name}"));
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).map_err(|e| Error::io("create", bin.display().to_string(), e))?;
    for (file, text) in [
        ("detect", detect),
        ("compile", compile),
        ("release", release),
    ] {
        let p = bin.join(file);
        std::fs::write(&p, text).map_err(|e| Error::io("write", p.display().to_string(), e))?;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| Error::io("chmod", p.display().to_string(), e))?;
    }
    Ok(Buildpack {
        name: format!("builtin:{name}"),
        dir,
    })
}

/// Resolves one configured list entry: `builtin:<name>` or a local directory.
pub fn resolve_entry(entry: &str, root: &Path) -> Result<Buildpack> {
    if let Some(name) = entry.strip_prefix("builtin:") {
        return materialize_builtin(name, root);
    }
    local(entry)
}

fn local(path: &str) -> Result<Buildpack> {
    let dir = PathBuf::from(path);
    if !dir.is_absolute() || !dir.join("bin/detect").is_file() {
        return Err(Error::Buildpack(format!(
            "buildpack {path:?} is not an absolute path to a directory with bin/detect"
        )));
    }
    Ok(Buildpack {
        name: path.to_string(),
        dir,
    })
}

/// Splits `BUILDPACK_URL` into the URL and the optional `#ref`, refusing values git could
/// read as options or that name no remote.
pub fn parse_buildpack_url(value: &str) -> Result<(String, Option<String>)> {
    let bad = |why: &str| Error::invalid("BUILDPACK_URL", value, why);
    let (url, r) = match value.split_once('#') {
        Some((u, r)) => (u, Some(r)),
        None => (value, None),
    };
    if url.is_empty()
        || url.starts_with('-')
        || url.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(bad("not a git URL or path"));
    }
    let ok_scheme = ["https://", "http://", "git://", "ssh://", "file://"]
        .iter()
        .any(|s| url.starts_with(s))
        || url.starts_with('/')
        || (url.contains('@') && url.contains(':'));
    if !ok_scheme {
        return Err(bad(
            "use an https://, http://, git://, ssh:// or file:// URL or an absolute path",
        ));
    }
    if let Some(r) = r
        && (r.is_empty()
            || r.starts_with('-')
            || !r
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._/-".contains(&b)))
    {
        return Err(bad("the #ref must be a branch, tag or commit"));
    }
    Ok((url.to_string(), r.map(str::to_string)))
}

/// Fetches the buildpack `BUILDPACK_URL` names into `root`: a local directory is used as is,
/// a git URL is cloned (and `#ref` checked out) with the real git.
pub async fn fetch(value: &str, root: &Path, out: &Output, limits: Limits) -> Result<Buildpack> {
    let (url, r) = parse_buildpack_url(value)?;
    if url.starts_with('/') && r.is_none() && Path::new(&url).join("bin/detect").is_file() {
        return local(&url);
    }
    let dir = root.join("buildpack-url");
    let _ = out.send(format!("-----> Fetching buildpack {value}")).await;
    let mut clone = Command::new("git");
    clone.env("GIT_TERMINAL_PROMPT", "0").args([
        "-c",
        "advice.detachedHead=false",
        "clone",
        "--quiet",
    ]);
    if r.is_none() {
        clone.args(["--depth", "1"]);
    }
    clone.arg("--").arg(&url).arg(&dir);
    let res = run_step("git clone", clone, out, "       ", false, limits).await?;
    if !res.status.success() {
        return Err(Error::Buildpack(format!(
            "cannot fetch buildpack {url:?}: git clone failed ({})",
            res.status
        )));
    }
    if let Some(r) = &r {
        let mut co = Command::new("git");
        co.arg("-C").arg(&dir).args([
            "-c",
            "advice.detachedHead=false",
            "checkout",
            "--quiet",
            r,
            "--",
        ]);
        let res = run_step("git checkout", co, out, "       ", false, limits).await?;
        if !res.status.success() {
            return Err(Error::Buildpack(format!(
                "buildpack {url:?} has no ref {r:?}"
            )));
        }
    }
    if !dir.join("bin/detect").is_file() || !dir.join("bin/compile").is_file() {
        return Err(Error::Buildpack(format!(
            "{value:?} is not a buildpack: bin/detect or bin/compile is missing"
        )));
    }
    Ok(Buildpack {
        name: value.to_string(),
        dir,
    })
}

/// A command running `script` of `bp` with a clean environment.
pub fn script(bp: &Buildpack, script: &str, env: &BTreeMap<String, String>) -> Command {
    let mut c = Command::new(bp.dir.join("bin").join(script));
    c.env_clear()
        .env(
            "PATH",
            "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin",
        )
        .env("LANG", "C.UTF-8")
        .envs(env)
        .current_dir(&bp.dir);
    c
}

/// Runs `bin/detect` of each candidate in order; the first that exits 0 is chosen, with the
/// name it printed. The error lists what was tried.
pub async fn detect(
    candidates: &[Buildpack],
    build_dir: &Path,
    env: &BTreeMap<String, String>,
    out: &Output,
    limits: Limits,
) -> Result<(Buildpack, String)> {
    for bp in candidates {
        let mut c = script(bp, "detect", env);
        c.arg(build_dir);
        let res = run_step(
            &format!("{} bin/detect", bp.name),
            c,
            out,
            "       ",
            true,
            limits,
        )
        .await?;
        if res.status.success() {
            let name = res
                .captured
                .iter()
                .find(|l| !l.trim().is_empty())
                .map(|l| l.trim().to_string())
                .unwrap_or_else(|| bp.name.clone());
            return Ok((bp.clone(), name));
        }
    }
    let tried: Vec<&str> = candidates.iter().map(|b| b.name.as_str()).collect();
    Err(Error::Buildpack(format!(
        "no buildpack detected this app (tried, in order: {}); add a Procfile, or set BUILDPACK_URL",
        tried.join(", ")
    )))
}

/// Reads `default_process_types` from `bin/release` YAML output: a mapping of
/// `type: command` lines (block or `{}` flow style for the empty map). Anything else in the
/// document is ignored; a malformed entry is an error naming the line.
pub fn parse_release(yaml: &str) -> Result<BTreeMap<String, String>> {
    let mut types = BTreeMap::new();
    let mut inside = false;
    for (i, raw) in yaml.lines().enumerate() {
        let line = raw.trim_end();
        if line.trim().is_empty() || line.trim_start().starts_with('#') || line.trim() == "---" {
            continue;
        }
        let indented = line.starts_with(' ') || line.starts_with('\t');
        if !indented {
            inside = false;
            let t = line.trim_start_matches("---").trim();
            if let Some(rest) = t.strip_prefix("default_process_types:") {
                let rest = rest.trim();
                if rest.is_empty() {
                    inside = true;
                } else if rest != "{}" && rest != "~" && rest != "null" {
                    return Err(Error::Buildpack(format!(
                        "bin/release line {}: default_process_types must be a mapping, got {rest:?}",
                        i + 1
                    )));
                }
            }
            continue;
        }
        if !inside {
            continue;
        }
        let Some((k, v)) = line.trim().split_once(':') else {
            return Err(Error::Buildpack(format!(
                "bin/release line {}: {:?} is not `type: command`",
                i + 1,
                line.trim()
            )));
        };
        let k = unquote(k.trim());
        let v = unquote(v.trim());
        workflow_types::procfile::validate_command(&k, &v)
            .and_then(|_| workflow_types::process::ProcessType::parse(&k).map(|_| ()))
            .map_err(|e| Error::Buildpack(format!("bin/release line {}: {e}", i + 1)))?;
        types.insert(k, v);
    }
    Ok(types)
}

fn unquote(s: &str) -> String {
    let b = s.as_bytes();
    if b.len() >= 2
        && ((b[0] == b'"' && b[b.len() - 1] == b'"') || (b[0] == b'\'' && b[b.len() - 1] == b'\''))
    {
        let inner = &s[1..s.len() - 1];
        if b[0] == b'"' {
            return inner.replace("\\\"", "\"").replace("\\\\", "\\");
        }
        return inner.replace("''", "'");
    }
    s.to_string()
}

/// The process types: `bin/release` defaults, overridden by the Procfile's entries.
pub fn merge_process_types(
    defaults: BTreeMap<String, String>,
    procfile: Option<&workflow_types::procfile::Procfile>,
) -> BTreeMap<String, String> {
    let mut types = defaults;
    if let Some(p) = procfile {
        for e in p.entries() {
            types.insert(e.process_type.as_str().to_string(), e.command.clone());
        }
    }
    types
}

/// Reads and parses `BUILD_DIR/Procfile`, if there is one; errors carry the line number.
pub fn read_procfile(
    build_dir: &Path,
    max: u64,
) -> Result<Option<workflow_types::procfile::Procfile>> {
    let p = build_dir.join("Procfile");
    let meta = match std::fs::symlink_metadata(&p) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("stat", "Procfile", e)),
    };
    if !meta.is_file() || meta.len() > max {
        return Err(Error::Buildpack(format!(
            "Procfile must be a regular file of at most {max} bytes"
        )));
    }
    let bytes = std::fs::read(&p).map_err(|e| Error::io("read", "Procfile", e))?;
    workflow_types::procfile::Procfile::parse(&bytes)
        .map(Some)
        .map_err(|e| Error::Buildpack(format!("Procfile: {e}")))
}

/// Writes one file per config var into `env_dir`; keys must be environment variable names.
pub fn write_env_dir(env_dir: &Path, config: &BTreeMap<String, String>) -> Result<()> {
    std::fs::create_dir_all(env_dir)
        .map_err(|e| Error::io("create", env_dir.display().to_string(), e))?;
    for (k, v) in config {
        let ok = !k.is_empty()
            && !k.as_bytes()[0].is_ascii_digit()
            && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !ok {
            return Err(Error::invalid(
                "config key",
                k,
                "must be letters, digits and _ (not starting with a digit)",
            ));
        }
        let p = env_dir.join(k);
        std::fs::write(&p, v).map_err(|e| Error::io("write", p.display().to_string(), e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_yaml_defaults_are_read() {
        let y = "---\naddons: []\ndefault_process_types:\n  web: \"bin/web --port $PORT\"\n  worker: bin/work\nconfig_vars:\n  X: y\n";
        let t = parse_release(y).unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t["web"], "bin/web --port $PORT");
        assert_eq!(t["worker"], "bin/work");
        assert!(parse_release("--- {}\n").unwrap().is_empty());
        assert!(parse_release("").unwrap().is_empty());
        assert!(
            parse_release("default_process_types: {}\n")
                .unwrap()
                .is_empty()
        );
        let e = parse_release("default_process_types:\n  web bin/x\n").unwrap_err();
        assert!(e.to_string().contains("line 2"), "{e}");
        let e = parse_release("default_process_types:\n  Bad_Type: x\n").unwrap_err();
        assert!(e.to_string().contains("line 2"), "{e}");
        assert!(parse_release("default_process_types: [web]\n").is_err());
    }

    #[test]
    fn procfile_wins_over_release_defaults() {
        let defaults = BTreeMap::from([
            ("web".to_string(), "default-web".to_string()),
            ("worker".to_string(), "default-worker".to_string()),
        ]);
        let p = workflow_types::procfile::Procfile::parse(b"web: mine\nclock: tick\n").unwrap();
        let t = merge_process_types(defaults.clone(), Some(&p));
        assert_eq!(t["web"], "mine");
        assert_eq!(t["worker"], "default-worker");
        assert_eq!(t["clock"], "tick");
        assert_eq!(merge_process_types(defaults.clone(), None), defaults);
    }

    #[test]
    fn malformed_procfile_names_the_line() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("Procfile"), "web: ok\n\nno colon here\n").unwrap();
        let e = read_procfile(d.path(), 1 << 20).unwrap_err();
        assert!(e.to_string().contains("line 3"), "{e}");
        std::fs::write(d.path().join("Procfile"), "web: ok\n").unwrap();
        assert_eq!(read_procfile(d.path(), 1 << 20).unwrap().unwrap().len(), 1);
        assert!(
            read_procfile(tempfile::tempdir().unwrap().path(), 10)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn buildpack_urls_are_checked() {
        assert_eq!(
            parse_buildpack_url("https://github.com/x/bp.git#v1.2").unwrap(),
            (
                "https://github.com/x/bp.git".to_string(),
                Some("v1.2".to_string())
            )
        );
        assert_eq!(parse_buildpack_url("/opt/bp").unwrap().1, None);
        for bad in [
            "",
            "--upload-pack=evil",
            "ftp://x",
            "https://x#-b",
            "https://x#",
            "https://a b",
            "relative/path",
        ] {
            let e = parse_buildpack_url(bad).unwrap_err();
            assert!(e.to_string().contains("BUILDPACK_URL"), "{bad:?}: {e}");
        }
    }

    #[test]
    fn env_dir_holds_one_file_per_var_and_refuses_bad_keys() {
        let d = tempfile::tempdir().unwrap();
        let cfg = BTreeMap::from([("A_B".to_string(), "1 2".to_string())]);
        write_env_dir(&d.path().join("env"), &cfg).unwrap();
        assert_eq!(
            std::fs::read_to_string(d.path().join("env/A_B")).unwrap(),
            "1 2"
        );
        for bad in ["../x", "a/b", "", "1A", "A-B"] {
            let cfg = BTreeMap::from([(bad.to_string(), "v".to_string())]);
            let e = write_env_dir(&d.path().join("env2"), &cfg).unwrap_err();
            assert!(e.to_string().contains(&format!("{bad:?}")), "{e}");
        }
    }

    #[tokio::test]
    async fn detect_goes_in_order_and_lists_what_was_tried() {
        let root = tempfile::tempdir().unwrap();
        let app = tempfile::tempdir().unwrap();
        let candidates = vec![
            materialize_builtin("static", root.path()).unwrap(),
            materialize_builtin("procfile", root.path()).unwrap(),
        ];
        let (tx, _rx) = tokio::sync::mpsc::channel(64);
        let limits = Limits {
            timeout: std::time::Duration::from_secs(30),
            max_output: 1 << 20,
        };
        let env = BTreeMap::new();
        let e = detect(&candidates, app.path(), &env, &tx, limits)
            .await
            .unwrap_err();
        assert!(
            e.to_string().contains("builtin:static, builtin:procfile"),
            "{e}"
        );
        std::fs::write(app.path().join("Procfile"), "web: x\n").unwrap();
        let (bp, name) = detect(&candidates, app.path(), &env, &tx, limits)
            .await
            .unwrap();
        assert_eq!(
            (bp.name.as_str(), name.as_str()),
            ("builtin:procfile", "Procfile")
        );
        // Both detect: the first in the list wins.
        std::fs::write(app.path().join("index.html"), "<p>hi</p>").unwrap();
        let (bp, name) = detect(&candidates, app.path(), &env, &tx, limits)
            .await
            .unwrap();
        assert_eq!(
            (bp.name.as_str(), name.as_str()),
            ("builtin:static", "Static HTML")
        );
    }
}
