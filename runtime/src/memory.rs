//! An in-memory [`Runtime`] for unit tests of the controller.
//!
//! Processes are records: `apply` makes the desired ones `up` at once, so a reconcile loop
//! converges in one step. Tests steer failures with hooks: a release whose image reference
//! contains `crash` crash-loops (its rollout is `Failed` and the previous version keeps
//! running), and [`MemoryRuntime::fail_version`] fails any version with a given reason.
//! Names (`<app>-<type>-<5 hex>`), start times and web addresses come from one counter, so
//! they are deterministic for a given sequence of calls.
//!
//! `run` understands a tiny shell: `echo WORDS` and `exit N`, separated by `;` or newlines;
//! anything else "prints" the command and exits 0.

use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Mutex;
use std::time::Duration;

use crate::{
    Capabilities, Desired, Error, Process, ProcessSpec, ProcessState, Restart, Result, Rollout,
    RunOutput, Runtime, validate,
};

/// First port handed to web processes.
const BASE_PORT: u16 = 20_000;

/// One app's records.
#[derive(Debug, Clone)]
struct AppState {
    app_id: String,
    /// The spec each running version was started with, by version then type.
    specs: BTreeMap<i64, BTreeMap<String, ProcessSpec>>,
    /// The env each version was started with.
    envs: BTreeMap<i64, BTreeMap<String, String>>,
    processes: Vec<Process>,
    /// Versions that failed, with the reason (a failed version is not retried).
    failed: BTreeMap<i64, String>,
}

#[derive(Debug, Default)]
struct Inner {
    apps: HashMap<String, AppState>,
    /// Drives names, start times and ports.
    counter: u64,
    /// Test hook: versions to fail, by app.
    fail: HashMap<(String, i64), String>,
    /// Every `apply` call, for tests that count reconcile steps.
    applies: u64,
}

impl Inner {
    fn tick(&mut self) -> u64 {
        self.counter += 1;
        self.counter
    }

    fn new_process(&mut self, app: &str, kind: &str, version: i64) -> Process {
        let n = self.tick();
        // A multiplicative hash spreads consecutive counters over the 5 hex digits.
        let id = (n.wrapping_mul(0x9E37_79B9) >> 7) & 0xF_FFFF;
        let addr = crate::is_routed(kind).then(|| {
            SocketAddr::from((
                Ipv4Addr::LOCALHOST,
                BASE_PORT.wrapping_add((n % 40_000) as u16),
            ))
        });
        Process {
            name: format!("{app}-{kind}-{id:05x}"),
            kind: kind.to_string(),
            version,
            state: ProcessState::Up,
            started: logical_time(n),
            restarts: 0,
            reason: None,
            addr,
        }
    }
}

/// A deterministic RFC 3339 time: the epoch of 2026 plus `n` seconds.
fn logical_time(n: u64) -> String {
    const BASE: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z
    chrono::DateTime::from_timestamp(BASE + n as i64, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The in-memory runtime.
#[derive(Debug, Default)]
pub struct MemoryRuntime {
    inner: Mutex<Inner>,
}

impl MemoryRuntime {
    /// An empty runtime.
    pub fn new() -> Self {
        Self::default()
    }

    /// Test hook: `apply` of this app's `version` ends `Failed(reason)`.
    pub fn fail_version(&self, app: &str, version: i64, reason: &str) {
        self.lock()
            .fail
            .insert((app.to_string(), version), reason.to_string());
    }

    /// How many times `apply` was called.
    pub fn apply_count(&self) -> u64 {
        self.lock().applies
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panicking test thread must not poison the runtime for the rest of the test.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Sorted as the trait promises: by type, then name.
fn sorted(mut processes: Vec<Process>) -> Vec<Process> {
    processes.sort_by(|a, b| a.kind.cmp(&b.kind).then_with(|| a.name.cmp(&b.name)));
    processes
}

#[async_trait::async_trait]
impl Runtime for MemoryRuntime {
    async fn apply(&self, desired: &Desired) -> Result<Rollout> {
        validate::desired(desired)?;
        let mut inner = self.lock();
        inner.applies += 1;
        if let Some(existing) = inner.apps.get(&desired.app)
            && existing.app_id != desired.app_id
        {
            return Err(Error::Invalid(format!(
                "app {} runs with id {}, not {}: destroy it first",
                desired.app, existing.app_id, desired.app_id
            )));
        }
        let mut state = inner.apps.remove(&desired.app).unwrap_or_else(|| AppState {
            app_id: desired.app_id.clone(),
            specs: BTreeMap::new(),
            envs: BTreeMap::new(),
            processes: Vec::new(),
            failed: BTreeMap::new(),
        });
        let rollout = step(&mut inner, &mut state, desired);
        inner.apps.insert(desired.app.clone(), state);
        Ok(rollout)
    }

    async fn destroy(&self, app: &str, app_id: &str) -> Result<()> {
        validate::app_name(app)?;
        validate::app_id(app_id)?;
        let mut inner = self.lock();
        if inner.apps.get(app).is_some_and(|s| s.app_id == app_id) {
            inner.apps.remove(app);
        }
        inner.fail.retain(|(a, _), _| a != app);
        Ok(())
    }

    async fn processes(&self, app: &str) -> Result<Vec<Process>> {
        validate::app_name(app)?;
        let inner = self.lock();
        Ok(inner
            .apps
            .get(app)
            .map(|s| sorted(s.processes.clone()))
            .unwrap_or_default())
    }

    async fn restart(&self, app: &str, which: &Restart) -> Result<Vec<Process>> {
        validate::app_name(app)?;
        let mut inner = self.lock();
        let Some(mut state) = inner.apps.remove(app) else {
            return Err(Error::NotFound(format!("app {app} runs no processes")));
        };
        let matches = |p: &Process| match which {
            Restart::All => true,
            Restart::Type(t) => &p.kind == t,
            Restart::Name(n) => &p.name == n,
        };
        if !state.processes.iter().any(matches) {
            let what = match which {
                Restart::All => "any process".to_string(),
                Restart::Type(t) => format!("processes of type {t}"),
                Restart::Name(n) => format!("a process named {n}"),
            };
            inner.apps.insert(app.to_string(), state);
            return Err(Error::NotFound(format!("app {app} has no {what}")));
        }
        let old = std::mem::take(&mut state.processes);
        for p in old {
            if matches(&p) {
                let fresh = inner.new_process(app, &p.kind, p.version);
                state.processes.push(fresh);
            } else {
                state.processes.push(p);
            }
        }
        let out = sorted(state.processes.clone());
        inner.apps.insert(app.to_string(), state);
        Ok(out)
    }

    async fn run(&self, desired: &Desired, command: &str, timeout: Duration) -> Result<RunOutput> {
        validate::desired(desired)?;
        if desired.image.is_none() {
            return Err(Error::Invalid(format!(
                "app {} has no build to run {command:?} with",
                desired.app
            )));
        }
        let _ = timeout;
        Ok(interpret(command))
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            memory_limits: true,
            cpu_limits: true,
        }
    }
}

/// One convergence step; always converges at once except for failures.
fn step(inner: &mut Inner, state: &mut AppState, desired: &Desired) -> Rollout {
    let Some(image) = &desired.image else {
        state.processes.clear();
        state.specs.clear();
        return Rollout::Ready;
    };
    if let Some(reason) = state.failed.get(&desired.version) {
        return Rollout::Failed(reason.clone());
    }
    let forced = inner
        .fail
        .get(&(desired.app.clone(), desired.version))
        .cloned();
    let crash = image.reference.contains("crash").then(|| {
        let kind = desired
            .processes
            .iter()
            .find(|(_, s)| s.count > 0)
            .map_or("web", |(k, _)| k.as_str());
        format!("{kind} processes of v{} keep crashing", desired.version)
    });
    // A version that runs nothing cannot crash.
    let runs_something = desired.processes.values().any(|s| s.count > 0);
    if let Some(reason) = forced.or(crash).filter(|_| runs_something) {
        state.failed.insert(desired.version, reason.clone());
        return Rollout::Failed(reason);
    }

    let same_start = |kind: &str, spec: &ProcessSpec, st: &AppState| {
        st.specs
            .get(&desired.version)
            .and_then(|m| m.get(kind))
            .is_some_and(|old| {
                old.command == spec.command
                    && old.memory == spec.memory
                    && old.cpu_millis == spec.cpu_millis
                    && old.readiness == spec.readiness
                    && old.liveness == spec.liveness
            })
            && st.envs.get(&desired.version) == Some(&desired.env)
    };
    let mut next = Vec::new();
    for (kind, spec) in &desired.processes {
        let keep_existing = same_start(kind, spec, state);
        let mut have: Vec<Process> = state
            .processes
            .iter()
            .filter(|p| keep_existing && p.version == desired.version && &p.kind == kind)
            .cloned()
            .collect();
        have.sort_by(|a, b| a.name.cmp(&b.name));
        have.truncate(spec.count as usize);
        while have.len() < spec.count as usize {
            have.push(inner.new_process(&desired.app, kind, desired.version));
        }
        next.extend(have);
    }
    state.processes = next;
    state.specs = BTreeMap::from([(desired.version, desired.processes.clone())]);
    state.envs = BTreeMap::from([(desired.version, desired.env.clone())]);
    Rollout::Ready
}

/// `echo` and `exit` separated by `;` or newlines.
fn interpret(command: &str) -> RunOutput {
    let mut output = String::new();
    for part in command.split([';', '\n']) {
        let part = part.trim();
        if let Some(rest) = part.strip_prefix("echo")
            && (rest.is_empty() || rest.starts_with(' '))
        {
            output.push_str(rest.trim());
            output.push('\n');
            continue;
        }
        if let Some(code) = part.strip_prefix("exit ") {
            return RunOutput {
                exit_code: code.trim().parse().unwrap_or(2),
                output,
            };
        }
        if !part.is_empty() {
            output.push_str(part);
            output.push('\n');
        }
    }
    RunOutput {
        exit_code: 0,
        output,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tiny_shell_echoes_and_exits() {
        let out = interpret("echo hello world; exit 3");
        assert_eq!(out.exit_code, 3);
        assert_eq!(out.output, "hello world\n");
        assert_eq!(interpret("true").exit_code, 0);
    }

    #[test]
    fn logical_times_are_rfc3339() {
        assert_eq!(logical_time(1), "2026-01-01T00:00:01Z");
    }
}
