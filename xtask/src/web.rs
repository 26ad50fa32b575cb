//! `cargo xtask sync-web`: copies the web demo and the JS client library from
//! `clients/web/` (where they are developed and tested) into `server/web/`, the
//! copy the server embeds and publishes with its crate. `tests/web_assets.rs`
//! fails while the two differ.

use std::path::Path;

use anyhow::{Context, Result};

/// The directories the server embeds, relative to both `clients/web/` and
/// `server/web/`.
pub const DIRS: &[&str] = &["demo", "src"];

/// Makes `server/web/<dir>` an exact copy of the regular files of
/// `clients/web/<dir>` for each of [`DIRS`]; returns the files written or removed.
pub fn sync(root: &Path) -> Result<Vec<String>> {
    let mut changed = Vec::new();
    for dir in DIRS {
        let from = root.join("clients/web").join(dir);
        let to = root.join("server/web").join(dir);
        std::fs::create_dir_all(&to).with_context(|| format!("creating {}", to.display()))?;
        let wanted = regular_files(&from)?;
        for name in regular_files(&to)? {
            if !wanted.contains(&name) {
                std::fs::remove_file(to.join(&name))?;
                changed.push(format!("removed server/web/{dir}/{name}"));
            }
        }
        for name in wanted {
            let body = std::fs::read(from.join(&name))?;
            if std::fs::read(to.join(&name)).ok().as_deref() != Some(body.as_slice()) {
                std::fs::write(to.join(&name), body)?;
                changed.push(format!("wrote server/web/{dir}/{name}"));
            }
        }
    }
    Ok(changed)
}

/// The names of the regular files (not symlinks, not directories) in `dir`, sorted.
fn regular_files(dir: &Path) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    names.sort();
    Ok(names)
}
