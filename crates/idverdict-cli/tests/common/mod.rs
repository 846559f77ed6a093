//! `idverdict serve` as a child process: started with a clean environment (plus what the test
//! sets), optionally behind a wrapper command (`prlimit …`, `sh -c 'umask 000; exec "$@"'`),
//! its stderr kept in a file for the test to read, stopped with SIGTERM.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};

pub const BIN: &str = env!("CARGO_BIN_EXE_idverdict");

pub struct ServeProcess {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    /// What the process wrote to stderr (the logs).
    pub stderr_path: PathBuf,
    _stderr_dir: tempfile::TempDir,
}

impl ServeProcess {
    /// `wrapper… idverdict serve`, with only `PATH` and `envs` in its environment. Returns
    /// once the listening line is on stdout.
    pub fn start(wrapper: &[&str], envs: &[(&str, &str)]) -> ServeProcess {
        let stderr_dir = tempfile::tempdir().expect("temp dir");
        let stderr_path = stderr_dir.path().join("stderr.log");
        let stderr = std::fs::File::create(&stderr_path).expect("stderr file");
        let mut cmd = match wrapper.split_first() {
            Some((program, args)) => {
                let mut cmd = Command::new(program);
                cmd.args(args).arg(BIN);
                cmd
            }
            None => Command::new(BIN),
        };
        cmd.arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default());
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawn serve");
        let mut reader = BufReader::new(child.stdout.take().expect("stdout"));
        let mut base = None;
        let mut seen = Vec::new();
        while base.is_none() {
            let mut line = String::new();
            if reader.read_line(&mut line).expect("read stdout") == 0 {
                let _ = child.wait();
                panic!(
                    "serve exited before listening: {seen:?}\nstderr:\n{}",
                    std::fs::read_to_string(&stderr_path).unwrap_or_default()
                );
            }
            if let Some(url) = line.trim().strip_prefix("webhook receiver listening on ") {
                base = Some(url.rsplit_once('/').map_or(url, |(b, _)| b).to_string());
            }
            seen.push(line);
        }
        // Keep draining stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || for _ in reader.lines() {});
        ServeProcess {
            child,
            base: base.unwrap_or_default(),
            stderr_path,
            _stderr_dir: stderr_dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// SIGTERM, then wait for the exit.
    pub fn stop(mut self) -> ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        self.child.wait().expect("wait for serve")
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        // A failed test must not leave the server running.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}
