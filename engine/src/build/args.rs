//! Build arguments as dockerd tracks them: the values given with `--build-arg`, the
//! ARGs declared (before FROM: for FROM lines and as defaults; in a stage: for its
//! instructions), which of them a step may see, and which were never used.

use std::collections::{BTreeMap, BTreeSet};

/// Proxy variables every build may take without an ARG; they stay out of history
/// unless an ARG declares them.
const BUILTIN: &[&str] = &[
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
];

/// The arguments of a build (cloned per stage).
#[derive(Debug, Clone, Default)]
pub struct BuildArgs {
    /// Declared in the current stage (name → default).
    allowed: BTreeMap<String, Option<String>>,
    /// Declared before the first FROM.
    meta: BTreeMap<String, Option<String>>,
    /// Every name an ARG declared anywhere.
    referenced: BTreeSet<String>,
    /// Given with `--build-arg` (a name without a value is `None`).
    options: BTreeMap<String, Option<String>>,
}

impl BuildArgs {
    /// Arguments given to the build.
    pub fn new(options: BTreeMap<String, Option<String>>) -> Self {
        Self {
            options,
            ..Default::default()
        }
    }

    /// A copy for a new stage: the meta ARGs stay, the stage's own are cleared.
    pub fn for_stage(&self) -> Self {
        Self {
            allowed: BTreeMap::new(),
            ..self.clone()
        }
    }

    /// Names declared anywhere, merged back from a finished stage.
    pub fn merge_referenced(&mut self, other: &Self) {
        self.referenced.extend(other.referenced.iter().cloned());
    }

    /// `ARG name[=default]` in a stage.
    pub fn add(&mut self, key: &str, default: Option<String>) {
        self.allowed.insert(key.to_string(), default);
        self.referenced.insert(key.to_string());
    }

    /// `ARG name[=default]` before FROM.
    pub fn add_meta(&mut self, key: &str, default: Option<String>) {
        self.meta.insert(key.to_string(), default.clone());
        self.add(key, default);
    }

    fn value(&self, key: &str, declared: &BTreeMap<String, Option<String>>) -> Option<String> {
        if let Some(Some(v)) = self.options.get(key) {
            return Some(v.clone());
        }
        match declared.get(key) {
            Some(Some(default)) => Some(default.clone()),
            _ => self.meta.get(key).cloned().flatten(),
        }
    }

    fn all_from(&self, declared: &BTreeMap<String, Option<String>>) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for key in declared
            .keys()
            .map(String::as_str)
            .chain(BUILTIN.iter().copied())
        {
            let declared_here = declared.contains_key(key);
            // An undeclared builtin counts only when given.
            if !declared_here && !matches!(self.options.get(key), Some(Some(_))) {
                continue;
            }
            if let Some(v) = self.value(key, declared) {
                out.insert(key.to_string(), v);
            }
        }
        out
    }

    /// Every argument a stage's instructions may see, with its value.
    pub fn allowed(&self) -> BTreeMap<String, String> {
        self.all_from(&self.allowed)
    }

    /// The meta arguments with their values (for FROM lines).
    pub fn meta(&self) -> BTreeMap<String, String> {
        self.all_from(&self.meta)
    }

    /// `KEY=value` for each allowed argument that `env` does not already set (ENV
    /// wins over ARG).
    pub fn filter_allowed(&self, env: &[String]) -> Vec<String> {
        let keys: BTreeSet<&str> = env
            .iter()
            .map(|e| e.split('=').next().unwrap_or(""))
            .collect();
        self.allowed()
            .into_iter()
            .filter(|(k, _)| !keys.contains(k.as_str()))
            .map(|(k, v)| format!("{k}={v}"))
            .collect()
    }

    /// Whether an argument goes into a RUN step's history: declared here, or not one
    /// of the proxy builtins.
    pub fn recorded(&self, key: &str) -> bool {
        self.allowed.contains_key(key) || !BUILTIN.contains(&key)
    }

    /// `--build-arg`s no ARG declared (dockerd's warning).
    pub fn unused(&self) -> Vec<String> {
        self.options
            .keys()
            .filter(|k| !self.referenced.contains(*k) && !BUILTIN.contains(&k.as_str()))
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(list: &[(&str, Option<&str>)]) -> BuildArgs {
        BuildArgs::new(
            list.iter()
                .map(|(k, v)| (k.to_string(), v.map(String::from)))
                .collect(),
        )
    }

    #[test]
    fn defaults_options_and_meta() {
        let mut a = opts(&[
            ("V", Some("given")),
            ("UNUSED", Some("x")),
            ("http_proxy", Some("p")),
        ]);
        a.add_meta("BASE", Some("busybox".into()));
        let mut s = a.for_stage();
        assert!(
            !s.allowed().contains_key("BASE"),
            "meta args need an ARG in the stage"
        );
        s.add("BASE", None);
        s.add("V", Some("default".into()));
        s.add("W", Some("w".into()));
        let all = s.allowed();
        assert_eq!(all["BASE"], "busybox");
        assert_eq!(all["V"], "given");
        assert_eq!(all["W"], "w");
        assert_eq!(all["http_proxy"], "p");
        assert!(!s.recorded("http_proxy"));
        assert!(s.recorded("V"));
        assert_eq!(
            s.filter_allowed(&["W=env".into()])
                .iter()
                .filter(|e| e.starts_with("W="))
                .count(),
            0
        );
        assert_eq!(s.unused(), vec!["UNUSED".to_string()]);
    }
}
