//! How much disk a tree of files takes, as dockerd counts it for `system df`, a
//! container's SizeRw, volume sizes and layers without a recorded size.

use std::path::Path;

/// The apparent size of the files under `path` (regular files and symlinks, hard links
/// counted once), as dockerd's `directory.Size` counts; what cannot be read counts 0.
pub fn disk_usage(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut seen = std::collections::HashSet::new();
    let mut total = 0;
    let mut stack = vec![path.to_path_buf()];
    while let Some(p) = stack.pop() {
        let Ok(md) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        if md.is_dir() {
            if let Ok(rd) = std::fs::read_dir(&p) {
                stack.extend(rd.flatten().map(|e| e.path()));
            }
            continue;
        }
        // A file with several links is one file's worth of disk.
        if md.nlink() > 1 && !seen.insert((md.dev(), md.ino())) {
            continue;
        }
        total += md.len();
    }
    total
}
