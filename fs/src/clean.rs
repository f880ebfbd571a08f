//! Container paths made canonical as dockerd makes them: Go's `filepath.Clean` of an
//! absolute path, so that `/../../etc`, `/data/`, `//data/./x/..` name what the container
//! names (`/etc`, `/data`, `/data`). Cleaning is only about the text; resolving the result
//! inside a root is [`crate::Root`]'s work.

/// Go's `filepath.Clean`, kept in berth-api beside the mount types that use it (pure text
/// work, one implementation for both crates).
pub use berth_api::path::clean;

/// A cleaned absolute container path as a path relative to its root (`/a/b` → `a/b`,
/// `/` → `.`), the form [`crate::Root::resolve`] takes.
pub fn relative(path: &str) -> String {
    let cleaned = clean(&format!("/{path}"));
    match cleaned.trim_start_matches('/') {
        "" => ".".into(),
        rest => rest.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_never_climbs() {
        assert_eq!(relative("/"), ".");
        assert_eq!(relative("/../../etc"), "etc");
        assert_eq!(relative("../x"), "x");
        assert_eq!(relative("a/b/"), "a/b");
    }
}
