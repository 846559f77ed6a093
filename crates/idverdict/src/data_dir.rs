//! The data directory belongs to one process at a time, and tells the CLI what runs there.
//!
//! - [`DataDirLock`]: `serve` and `emulate` take an exclusive advisory lock (`flock`) on
//!   `<dir>/idverdict.lock` for their whole life and write their PID into it. A second process
//!   on the same directory — two writers on one SQLite file, or two emulators delivering the
//!   same webhooks — is refused with the holder's PID. The kernel drops the lock when the
//!   process ends, however it ends, so a crash never leaves the directory locked.
//! - [`ServeInfo`]: while it runs, `serve` publishes `<dir>/serve.json` (owner-only): its own
//!   address and, in dev mode, the embedded emulator's. `trigger`, `endpoints`, `reconcile` and
//!   `redact` read it to find the emulator. A clean stop removes the file; a file left by a
//!   killed `serve` is recognised as stale because nobody holds the lock any more.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The lock file inside the data directory.
pub const LOCK_FILE: &str = "idverdict.lock";
/// What the running `serve` publishes for the CLI.
pub const SERVE_FILE: &str = "serve.json";

/// A reader probing the lock holds it shared for an instant; a starting process retries
/// this often before it concludes that another process really holds the directory.
const CONTENDED_TRIES: u32 = 20;
const CONTENDED_PAUSE: Duration = Duration::from_millis(25);

/// The process that holds a data directory, as it wrote itself into the lock file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub pid: u32,
    /// `serve` or `emulate`.
    pub command: String,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "`idverdict {}` (PID {})", self.command, self.pid)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DataDirError {
    #[error("the data directory {} is in use by {}; stop that process first, or give this one a directory of its own", dir.display(), holder.as_ref().map(ToString::to_string).unwrap_or_else(|| "another process".into()))]
    InUse {
        dir: PathBuf,
        holder: Option<Holder>,
    },
    #[error("cannot use the data directory {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// An exclusive hold on a data directory, released when dropped (or when the process ends).
/// Dropping it also removes a published [`ServeInfo`].
#[derive(Debug)]
pub struct DataDirLock {
    file: File,
    dir: PathBuf,
    published: bool,
}

impl DataDirLock {
    /// Take the directory for `command` (`serve`, `emulate`), creating it if needed. Fails
    /// with [`DataDirError::InUse`] naming the holder while another process has it.
    pub fn acquire(dir: &Path, command: &str) -> Result<DataDirLock, DataDirError> {
        let io = |source| DataDirError::Io {
            path: dir.to_path_buf(),
            source,
        };
        create_private_dir(dir).map_err(io)?;
        let path = dir.join(LOCK_FILE);
        let mut file = private_options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        let mut tries = 0;
        loop {
            match fs4::FileExt::try_lock(&file) {
                Ok(()) => break,
                Err(fs4::TryLockError::WouldBlock) if tries + 1 < CONTENDED_TRIES => {
                    tries += 1;
                    std::thread::sleep(CONTENDED_PAUSE);
                }
                Err(fs4::TryLockError::WouldBlock) => {
                    return Err(DataDirError::InUse {
                        dir: dir.to_path_buf(),
                        holder: read_holder(&mut file),
                    })
                }
                Err(fs4::TryLockError::Error(e)) => return Err(io(e)),
            }
        }
        let me = format!("{} {command}\n", std::process::id());
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        file.write_all(me.as_bytes()).map_err(io)?;
        file.sync_all().map_err(io)?;
        Ok(DataDirLock {
            file,
            dir: dir.to_path_buf(),
            published: false,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Write `serve.json` (owner-only) for the CLI; removed again when the lock is dropped.
    pub fn publish(&mut self, info: &ServeInfo) -> Result<(), DataDirError> {
        let path = self.dir.join(SERVE_FILE);
        let body = serde_json::to_vec_pretty(info).map_err(|e| DataDirError::Io {
            path: path.clone(),
            source: e.into(),
        })?;
        write_private(&path, &body).map_err(|source| DataDirError::Io { path, source })?;
        self.published = true;
        Ok(())
    }
}

impl Drop for DataDirLock {
    fn drop(&mut self) {
        if self.published {
            let _ = std::fs::remove_file(self.dir.join(SERVE_FILE));
        }
        let _ = fs4::FileExt::unlock(&self.file);
    }
}

/// Who holds `dir` right now (`None`: nobody, or the directory or its lock file does not
/// exist). Probing takes a shared lock for an instant; see [`CONTENDED_TRIES`].
pub fn holder(dir: &Path) -> Option<Holder> {
    let mut file = File::open(dir.join(LOCK_FILE)).ok()?;
    match fs4::FileExt::try_lock_shared(&file) {
        Ok(()) => {
            let _ = fs4::FileExt::unlock(&file);
            None
        }
        Err(_) => Some(read_holder(&mut file).unwrap_or(Holder {
            pid: 0,
            command: "?".into(),
        })),
    }
}

fn read_holder(file: &mut File) -> Option<Holder> {
    let mut text = String::new();
    file.rewind().ok()?;
    file.read_to_string(&mut text).ok()?;
    let mut words = text.split_whitespace();
    let pid = words.next()?.parse().ok()?;
    let command = words.next().unwrap_or("?").to_string();
    Some(Holder { pid, command })
}

/// What a running `serve` publishes in its data directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServeInfo {
    pub pid: u32,
    /// Where the API answers, e.g. `http://127.0.0.1:4242`.
    pub api_url: String,
    /// Where Stripe (or `trigger`) posts, e.g. `http://127.0.0.1:4242/webhook`.
    pub webhook_url: String,
    /// The embedded Stripe emulator in dev mode.
    pub emulator: Option<EmulatorInfo>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmulatorInfo {
    pub url: String,
    /// A test key the emulator accepts (any `sk_test_…` does; not a credential).
    pub api_key: String,
}

/// What the data directory says about `serve`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Discovery {
    /// A `serve` runs there and published this.
    Running(ServeInfo),
    /// A `serve.json` is there, but no process holds the directory: its `serve` was killed.
    Stale(ServeInfo),
    /// No `serve.json` (no `serve` runs there, or one that publishes nothing).
    Nothing,
}

impl Discovery {
    /// The running serve's information, if any.
    pub fn running(&self) -> Option<&ServeInfo> {
        match self {
            Discovery::Running(info) => Some(info),
            _ => None,
        }
    }
}

/// Read `<dir>/serve.json` and check that its `serve` still holds the directory.
pub fn discover(dir: &Path) -> Discovery {
    let Ok(text) = std::fs::read(dir.join(SERVE_FILE)) else {
        return Discovery::Nothing;
    };
    let Ok(info) = serde_json::from_slice::<ServeInfo>(&text) else {
        return Discovery::Nothing;
    };
    match holder(dir) {
        Some(h) if h.command == "serve" => Discovery::Running(info),
        _ => Discovery::Stale(info),
    }
}

/// Create `dir` (and missing parents) readable by the owner only: it holds the database and
/// credentials. An existing directory keeps the permissions the operator gave it.
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    crate::owner_only::create_dir(dir)
}

fn private_options() -> OpenOptions {
    #[allow(unused_mut)]
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
}

/// Replace `path` atomically with an owner-only file holding `body` (a credential, or what
/// leads to one).
pub fn write_private(path: &Path, body: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = private_options()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)?;
    f.write_all(body)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> ServeInfo {
        ServeInfo {
            pid: std::process::id(),
            api_url: "http://127.0.0.1:1".into(),
            webhook_url: "http://127.0.0.1:1/webhook".into(),
            emulator: Some(EmulatorInfo {
                url: "http://127.0.0.1:2".into(),
                api_key: "sk_test_x".into(),
            }),
        }
    }

    #[test]
    fn a_second_holder_is_refused_with_the_first_ones_pid() {
        let dir = tempfile::tempdir().unwrap();
        let first = DataDirLock::acquire(dir.path(), "serve").unwrap();
        let again = DataDirLock::acquire(dir.path(), "emulate").unwrap_err();
        match &again {
            DataDirError::InUse { holder, .. } => assert_eq!(
                holder.as_ref().unwrap(),
                &Holder {
                    pid: std::process::id(),
                    command: "serve".into()
                }
            ),
            other => panic!("{other:?}"),
        }
        let message = again.to_string();
        assert!(
            message.contains(&format!("`idverdict serve` (PID {})", std::process::id())),
            "{message}"
        );
        assert_eq!(holder(dir.path()).unwrap().command, "serve");
        drop(first);
        assert_eq!(holder(dir.path()), None);
        DataDirLock::acquire(dir.path(), "emulate").unwrap();
    }

    #[test]
    fn published_information_is_owner_only_and_goes_with_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(discover(dir.path()), Discovery::Nothing);
        let data = dir.path().join("new");
        let mut lock = DataDirLock::acquire(&data, "serve").unwrap();
        lock.publish(&info()).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            for path in [data.clone(), data.join(SERVE_FILE), data.join(LOCK_FILE)] {
                let mode = std::fs::metadata(&path).unwrap().permissions().mode();
                assert_eq!(mode & 0o077, 0, "{}: {mode:o}", path.display());
            }
        }
        assert_eq!(discover(&data), Discovery::Running(info()));
        drop(lock);
        assert_eq!(discover(&data), Discovery::Nothing);
    }

    #[test]
    fn a_file_left_by_a_killed_serve_is_stale() {
        let dir = tempfile::tempdir().unwrap();
        // What a `kill -9` leaves: the file, and a lock nobody holds.
        std::fs::write(dir.path().join(LOCK_FILE), "999999 serve\n").unwrap();
        std::fs::write(
            dir.path().join(SERVE_FILE),
            serde_json::to_vec(&info()).unwrap(),
        )
        .unwrap();
        assert_eq!(discover(dir.path()), Discovery::Stale(info()));
        assert!(discover(dir.path()).running().is_none());
    }
}
