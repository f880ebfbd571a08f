//! Commands over several containers (stop, kill, rm, pause, ...): each container is
//! tried, a failure is reported on stderr and the others still go ahead, and the exit
//! code is 1 if any failed, as docker does.

use crate::error::Result;
use std::future::Future;

/// Runs `op` for every name (concurrently, as docker does), then prints each name that
/// succeeded on stdout and each error on stderr, in the order given; the exit code.
pub async fn each<F, Fut>(names: &[String], op: F) -> i32
where
    F: Fn(String) -> Fut,
    Fut: Future<Output = Result<()>>,
{
    let results = futures_util::future::join_all(names.iter().map(|n| op(n.clone()))).await;
    let mut code = 0;
    for (name, r) in names.iter().zip(results) {
        match r {
            Ok(()) => println!("{name}"),
            Err(e) => {
                // An API error already reads "Error response from daemon: ...".
                eprintln!("{e}");
                code = 1;
            }
        }
    }
    code
}

/// A container name or ID as a URL path segment (percent-encoded, so that a name
/// with `/`, `?` or `#` cannot reach another endpoint).
pub fn seg(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
