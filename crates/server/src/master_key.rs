//! Where the master key comes from: `SETTLE_MASTER_KEY` (base64 keys,
//! comma separated, current first: set it, identically, on every process
//! sharing a database), or else `master.key` in the data directory,
//! generated with owner-only permissions on first start.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use settle_core::secrets::MasterKeys;

pub const FILE: &str = "master.key";

pub fn load(from_env: Option<&str>, data_dir: &Path) -> anyhow::Result<MasterKeys> {
    if let Some(text) = from_env.filter(|t| !t.trim().is_empty()) {
        return MasterKeys::parse(text).context("SETTLE_MASTER_KEY");
    }
    let path = data_dir.join(FILE);
    if !path.exists() {
        std::fs::create_dir_all(data_dir).with_context(|| format!("cannot create {}", data_dir.display()))?;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        match options.open(&path) {
            Ok(mut file) => {
                writeln!(file, "{}", MasterKeys::generate_text())?;
                file.sync_all()?;
                tracing::info!(path = %path.display(), "generated a master key");
            }
            // Another process created it first: use theirs.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e).with_context(|| format!("cannot create {}", path.display())),
        }
    }
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
    MasterKeys::parse(text.trim()).with_context(|| format!("invalid master key in {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_once_then_reused_and_env_wins() {
        let dir = std::env::temp_dir().join(format!("settle-mk-{}-{:x}", std::process::id(), rand::random::<u32>()));
        let first = load(None, &dir).unwrap();
        let sealed = first.seal(b"x").unwrap();
        let again = load(None, &dir).unwrap();
        assert_eq!(again.open(&sealed).unwrap(), b"x", "the same key on the next start");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join(FILE)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let env = MasterKeys::generate_text();
        let from_env = load(Some(&env), &dir).unwrap();
        assert!(from_env.open(&sealed).is_err(), "the environment's key is used");
        assert!(load(Some("not a key"), &dir).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
