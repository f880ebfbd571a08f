//! Container paths cleaned as Go's `path.Clean` cleans them (dockerd cleans mount
//! destinations with it). Pure string work: resolving a path inside a root is
//! `berth-fs`'s job, never this crate's.

/// The shortest path equal to `path` by lexical processing: repeated and trailing
/// slashes, `.` elements, and `..` after a name are removed; `..` at the root stays at
/// the root.
pub fn clean(path: &str) -> String {
    if path.is_empty() {
        return ".".into();
    }
    let rooted = path.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for element in path.split('/') {
        match element {
            "" | "." => {}
            ".." => {
                if out.last().is_some_and(|last| *last != "..") {
                    out.pop();
                } else if !rooted {
                    out.push("..");
                }
            }
            name => out.push(name),
        }
    }
    let joined = out.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

#[cfg(test)]
mod tests {
    use super::clean;

    #[test]
    fn cleans_as_go_does() {
        for (i, o) in [
            ("", "."),
            ("/", "/"),
            ("//a//b/", "/a/b"),
            ("/a/./b/../c", "/a/c"),
            ("/../../etc", "/etc"),
            ("a/../..", ".."),
            ("./", "."),
        ] {
            assert_eq!(clean(i), o, "{i}");
        }
    }
}
