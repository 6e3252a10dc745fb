//! Running build steps (buildpack scripts) under limits.
//!
//! Each step runs in its own process group so that a timeout or an output flood kills
//! everything it started, not only the direct child; stragglers left running in the
//! background after a step exits are killed too. Output is read line by line (long lines
//! are cut into pieces) and counted against a byte limit.

use std::process::ExitStatus;
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt as _, AsyncRead, BufReader};
use tokio::process::Command;
use tokio::sync::mpsc;

use super::Output;
use crate::error::{Error, Result};

/// Longest piece of a line sent as one output line.
const MAX_LINE: usize = 8 * 1024;

/// Limits of one step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock limit.
    pub timeout: Duration,
    /// Most bytes of stdout + stderr.
    pub max_output: u64,
}

/// Kills the process group when dropped (every exit path, panics and cancellation included).
struct GroupGuard(Option<Pid>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            // ESRCH (already gone) is the normal case.
            let _ = killpg(pid, Signal::SIGKILL);
        }
    }
}

async fn pump<R: AsyncRead + Unpin>(r: R, tx: mpsc::Sender<Vec<u8>>) {
    let mut r = BufReader::with_capacity(MAX_LINE, r);
    loop {
        let buf = match r.fill_buf().await {
            Ok([]) | Err(_) => return,
            Ok(b) => b,
        };
        let (piece, used) = match memchr_nl(buf) {
            Some(i) => (buf[..i].to_vec(), i + 1),
            None if buf.len() >= MAX_LINE => (buf.to_vec(), buf.len()),
            None => {
                // A partial line: wait for more unless the stream ends here.
                let n = buf.len();
                let mut line = buf.to_vec();
                r.consume(n);
                let mut rest = Vec::new();
                let more = (&mut r)
                    .take((MAX_LINE - line.len()) as u64)
                    .read_until(b'\n', &mut rest)
                    .await
                    .unwrap_or(0);
                if rest.last() == Some(&b'\n') {
                    rest.pop();
                }
                line.extend_from_slice(&rest);
                if tx.send(line).await.is_err() || more == 0 {
                    return;
                }
                continue;
            }
        };
        r.consume(used);
        if tx.send(piece).await.is_err() {
            return;
        }
    }
}

fn memchr_nl(b: &[u8]) -> Option<usize> {
    b.iter().position(|&c| c == b'\n')
}

use tokio::io::AsyncReadExt as _;

/// What a finished step gave.
#[derive(Debug)]
pub struct StepResult {
    /// The exit status.
    pub status: ExitStatus,
    /// The captured stdout lines when capturing, else empty.
    pub captured: Vec<String>,
}

/// Runs `cmd` as `step`: output lines go to `out` prefixed with `indent` (stdout is captured
/// instead when `capture`), under `limits`. An error when the step times out or floods.
pub async fn run_step(
    step: &str,
    mut cmd: Command,
    out: &Output,
    indent: &str,
    capture: bool,
    limits: Limits,
) -> Result<StepResult> {
    cmd.process_group(0)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd
        .spawn()
        .map_err(|e| Error::Buildpack(format!("{step}: cannot start: {e}")))?;
    let guard = GroupGuard(child.id().map(|id| Pid::from_raw(id as i32)));
    let (tx_out, mut rx_out) = mpsc::channel::<Vec<u8>>(64);
    let (tx_err, mut rx_err) = mpsc::channel::<Vec<u8>>(64);
    if let Some(o) = child.stdout.take() {
        tokio::spawn(pump(o, tx_out));
    }
    if let Some(e) = child.stderr.take() {
        tokio::spawn(pump(e, tx_err));
    }
    let deadline = tokio::time::sleep(limits.timeout);
    tokio::pin!(deadline);
    let mut total: u64 = 0;
    let mut captured = Vec::new();
    let mut status: Option<ExitStatus> = None;
    let (mut out_open, mut err_open) = (true, true);
    while status.is_none() || out_open || err_open {
        let (line, is_stdout) = tokio::select! {
            _ = &mut deadline => {
                drop(guard);
                let _ = child.kill().await;
                return Err(Error::Timeout { step: step.to_string(), secs: limits.timeout.as_secs() });
            }
            s = child.wait(), if status.is_none() => {
                let s = s.map_err(|e| Error::Buildpack(format!("{step}: wait: {e}")))?;
                status = Some(s);
                // Background processes the step left behind would keep the pipes open.
                if let Some(pid) = guard.0 {
                    let _ = killpg(pid, Signal::SIGKILL);
                }
                continue;
            }
            l = rx_out.recv(), if out_open => match l {
                Some(l) => (l, true),
                None => { out_open = false; continue; }
            },
            l = rx_err.recv(), if err_open => match l {
                Some(l) => (l, false),
                None => { err_open = false; continue; }
            },
        };
        total += line.len() as u64 + 1;
        if total > limits.max_output {
            drop(guard);
            let _ = child.kill().await;
            return Err(Error::OutputLimit {
                step: step.to_string(),
                limit: limits.max_output,
            });
        }
        let text = String::from_utf8_lossy(&line).into_owned();
        if capture && is_stdout {
            captured.push(text);
        } else {
            // A gone receiver (client hung up) does not stop the build.
            let _ = out.send(format!("{indent}{text}")).await;
        }
    }
    drop(guard);
    Ok(StepResult {
        status: status.expect("loop ends with a status"),
        captured,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Command {
        let mut c = Command::new("sh");
        c.arg("-c").arg(script);
        c
    }

    const LIMITS: Limits = Limits {
        timeout: Duration::from_secs(30),
        max_output: 1 << 20,
    };

    #[tokio::test]
    async fn lines_are_indented_and_stdout_can_be_captured() {
        let (tx, mut rx) = mpsc::channel(16);
        let r = run_step(
            "t",
            sh("echo one; echo two >&2; exit 3"),
            &tx,
            "       ",
            false,
            LIMITS,
        )
        .await
        .unwrap();
        assert_eq!(r.status.code(), Some(3));
        drop(tx);
        let mut lines = Vec::new();
        while let Some(l) = rx.recv().await {
            lines.push(l);
        }
        lines.sort();
        assert_eq!(lines, ["       one", "       two"]);
        let (tx, _rx) = mpsc::channel(16);
        let r = run_step("t", sh("printf 'a\\nb'"), &tx, "", true, LIMITS)
            .await
            .unwrap();
        assert_eq!(r.captured, ["a", "b"]);
    }

    #[tokio::test]
    async fn a_hanging_step_is_killed_with_its_children() {
        let (tx, _rx) = mpsc::channel(16);
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("alive");
        // The grandchild would write the marker after the step was killed.
        let script = format!("(sleep 2; touch {}) & sleep 600", marker.display());
        let limits = Limits {
            timeout: Duration::from_millis(300),
            ..LIMITS
        };
        let e = run_step("compile", sh(&script), &tx, "", false, limits)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("compile timed out"), "{e}");
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert!(!marker.exists(), "a child of the step survived the timeout");
    }

    #[tokio::test]
    async fn a_flood_of_output_is_cut() {
        let (tx, mut rx) = mpsc::channel(1024);
        tokio::spawn(async move { while rx.recv().await.is_some() {} });
        let limits = Limits {
            max_output: 100_000,
            ..LIMITS
        };
        let e = run_step(
            "compile",
            sh("yes xxxxxxxxxxxxxxxxxxxxxxxx"),
            &tx,
            "",
            false,
            limits,
        )
        .await
        .unwrap_err();
        assert!(e.to_string().contains("more than 100000 bytes"), "{e}");
        // One endless line without a newline is cut too.
        let (tx, mut rx) = mpsc::channel(1024);
        tokio::spawn(async move { while rx.recv().await.is_some() {} });
        let e = run_step(
            "compile",
            sh("tr '\\0' x < /dev/zero"),
            &tx,
            "",
            false,
            limits,
        )
        .await
        .unwrap_err();
        assert!(matches!(e, Error::OutputLimit { .. }), "{e}");
    }
}
