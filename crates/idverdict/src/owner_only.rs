//! Files and directories only their owner may open: the data directory, the SQLite database
//! and the development credentials hold personal data or secrets. Modes are set explicitly,
//! so no umask can widen them (a umask only ever removes bits from what is asked for, and
//! what is asked for here is owner-only).

use std::io;
use std::path::Path;

/// Create `dir` (and missing parents) as 0700. An existing directory is left as it is: it
/// may be shared on purpose, and it is not ours to change.
pub fn create_dir(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        builder.mode(0o700);
        builder.create(dir)?;
        // A umask such as 0o200 would have taken the owner's own write bit.
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
    }
    #[cfg(not(unix))]
    builder.create(dir)
}

/// Make sure the SQLite database at `db` exists as 0600, and that its `-wal` and `-shm`
/// files, if a previous run left them, are 0600 too: SQLite creates those two with the mode
/// of the database file, so a database created here never gets wider ones.
pub fn prepare_database_files(db: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(db)?;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        for suffix in ["-wal", "-shm"] {
            let mut name = db.as_os_str().to_owned();
            name.push(suffix);
            match std::fs::set_permissions(&name, std::fs::Permissions::from_mode(0o600)) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
    }
    #[cfg(not(unix))]
    let _ = db;
    Ok(())
}
