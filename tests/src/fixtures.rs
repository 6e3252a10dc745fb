//! Build fixtures shared by the engine tests (`tests/tests/builder_push.rs`) and the stories
//! against `workflow up` (`cli/tests/push_story.rs`, which includes this file by path): a
//! buildpack whose compile step keeps a counter in its cache, and a busybox base image made
//! with `docker import` (the engine on this machine cannot pull). Only `std`, so both crates
//! can compile it.

use std::path::Path;
use std::process::Command;

/// The base image Dockerfile apps build `FROM`.
pub const BUSYBOX_IMAGE: &str = "wf-build-busybox:test";

/// Whether a tool is on PATH; under CI (`CI` set) a missing tool fails the test instead of
/// skipping it.
pub fn tool(name: &str, package: &str) -> bool {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {name}"))
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "{name} is missing (apt-get install {package})"
        );
        eprintln!("skipping: {name} is missing (apt-get install {package})");
    }
    found
}

/// Writes `(path, text, mode)` files under `root`, making directories.
pub fn write(root: &Path, files: &[(&str, &str, u32)]) {
    use std::os::unix::fs::PermissionsExt as _;
    for (name, text, mode) in files {
        let p = root.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(*mode)).unwrap();
    }
}

/// A buildpack ("Counter", detects an `app.txt`) whose compile step prints `cache: cold` or
/// `cache: warm N` (N earlier builds), copies `GREETING` from ENV_DIR into the build, and
/// whose `bin/release` declares `web: ./serve` and `clock: ./tick`.
pub fn caching_buildpack(dir: &Path) {
    write(
        dir,
        &[
            (
                "bin/detect",
                "#!/bin/sh\n[ -f \"$1/app.txt\" ] && echo Counter && exit 0\nexit 1\n",
                0o755,
            ),
            (
                "bin/compile",
                "#!/bin/sh\nset -e\nBUILD=$1 CACHE=$2 ENV=$3\nif [ -f \"$CACHE/count\" ]; then echo \"cache: warm $(cat $CACHE/count)\"; else echo 'cache: cold'; fi\nn=$(cat \"$CACHE/count\" 2>/dev/null || echo 0)\necho $((n+1)) > \"$CACHE/count\"\ncat \"$ENV/GREETING\" > \"$BUILD/greeting\"\n",
                0o755,
            ),
            (
                "bin/release",
                "#!/bin/sh\ncat <<EOF\n---\ndefault_process_types:\n  web: ./serve\n  clock: ./tick\nEOF\n",
                0o755,
            ),
        ],
    );
}

/// Imports a busybox-static rootfs as [`BUSYBOX_IMAGE`] once; false (a skip) when docker or
/// busybox is missing outside CI.
pub fn busybox_image() -> bool {
    if !tool("docker", "docker.io") {
        return false;
    }
    if !Path::new("/bin/busybox").exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "/bin/busybox is missing (apt-get install busybox-static)"
        );
        eprintln!("skipping: /bin/busybox is missing (apt-get install busybox-static)");
        return false;
    }
    let present = Command::new("docker")
        .args(["image", "inspect", BUSYBOX_IMAGE])
        .output()
        .is_ok_and(|o| o.status.success());
    if present {
        return true;
    }
    let root = tempfile_dir();
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
    for l in ["sh", "echo", "cat", "httpd", "false", "ls", "sleep"] {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(l)).unwrap();
    }
    let status = Command::new("sh")
        .arg("-c")
        .arg("tar -C \"$0\" -c . | docker import - \"$1\" >/dev/null")
        .arg(&root)
        .arg(BUSYBOX_IMAGE)
        .status()
        .unwrap();
    let _ = std::fs::remove_dir_all(&root);
    assert!(status.success(), "docker import of {BUSYBOX_IMAGE} failed");
    true
}

/// A fresh scratch directory (no tempfile crate here: the file is shared by path).
fn tempfile_dir() -> std::path::PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let d = std::env::temp_dir().join(format!("wf-busybox-rootfs-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}
