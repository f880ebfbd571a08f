//! Go's text/template, as the docker CLI runs `--format` templates: the whole
//! language (actions, pipelines, variables, if/else if/with/range/break/continue,
//! define/template/block, comments, `{{-`/`-}}` trimming, parenthesised pipelines,
//! field chains, method calls with arguments such as `.Label "key"`), Go's builtins
//! and fmt verbs, and docker's extra functions. No maintained Rust crate implements
//! these semantics (gtmpl, the closest, was last released in 2021, lacks `html`, `js`
//! and a stable `printf`, and cannot tell a struct's missing field from a map's
//! missing key, which decides whether docker fails), so it is written here against
//! Go's documentation and checked side by side with the docker CLI.

mod exec;
mod funcs;
mod parse;
pub mod printf;
mod value;

pub use exec::MissingKey;
pub use value::{NilKind, Struct, Value};

/// Which functions a template may call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FuncSet {
    /// Go's builtins and docker's basic functions (rows, inspect, version, ...).
    Basic,
    /// docker's header functions over those (the header row of a `table` format).
    Header,
}

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    tree: parse::Tree,
}

/// A template that does not parse: Go's `template: NAME:LINE: MESSAGE`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("template: {name}:{line}: {message}")]
pub struct ParseError {
    /// The template's name.
    pub name: String,
    /// Its line.
    pub line: usize,
    /// Go's message.
    pub message: String,
}

struct Has;

impl parse::Funcs for Has {
    fn has(&self, name: &str) -> bool {
        funcs::Table::has(&funcs::Basic, name)
    }
}

impl Template {
    /// Parses `src` as the template `name` (docker's formats are unnamed: `""`).
    pub fn parse(name: &str, src: &str) -> Result<Self, ParseError> {
        parse::parse(name, src, &Has)
            .map(|tree| Self { tree })
            .map_err(|(pos, message)| ParseError {
                name: name.to_string(),
                line: 1 + src[..pos.min(src.len())].matches('\n').count(),
                message,
            })
    }

    /// Runs it with `data`; Go's error text if it fails.
    pub fn execute(
        &self,
        data: &Value,
        missing: MissingKey,
        set: FuncSet,
    ) -> Result<String, String> {
        match set {
            FuncSet::Basic => exec::execute(&self.tree, data, missing, &funcs::Basic),
            FuncSet::Header => exec::execute(&self.tree, data, missing, &funcs::Header),
        }
    }

    /// Runs it with `data` and docker's functions: what it wrote, and Go's error text
    /// if it failed part way.
    pub fn execute_partial(&self, data: &Value, missing: MissingKey) -> (String, Option<String>) {
        exec::execute_partial(&self.tree, data, missing, &funcs::Basic)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> Value {
        let mut s = Struct::new(
            "*formatter.ContainerContext",
            vec![
                ("Names".into(), "web".into()),
                ("State".into(), "running".into()),
                ("Labels".into(), "a=1,com.x=y".into()),
                ("Pid".into(), Value::Int(42)),
            ],
        );
        s.hidden = vec![("a".into(), "1".into()), ("com.x".into(), "y".into())];
        s.methods.push(("Label", |s, args| match args {
            [Value::Str(k)] => Ok(Value::Str(s.hidden(k).unwrap_or("").to_string())),
            _ => Err("wrong number of args for Label: want 1 got 0".into()),
        }));
        s.into()
    }

    fn run(src: &str, data: &Value) -> Result<String, String> {
        Template::parse("", src)
            .map_err(|e| e.to_string())?
            .execute(data, MissingKey::Default, FuncSet::Basic)
    }

    #[test]
    fn docker_s_functions_and_go_s_builtins() {
        let out = run(
            r#"{{.Label "a"}} {{upper .Names}} {{pad .Names 2 3}}| {{truncate .Names 2}} {{title "hello world"}} {{split "a:b" ":"}} {{join (split "a:b" ":") "-"}} {{json .Labels}} {{printf "%5.2f|%-4s|%q|%v|%x" 3.14159 "ab" "q" 12 255}} {{len .Names}} {{index (split "a:b" ":") 1}} {{if eq .State "running"}}R{{else}}N{{end}} {{range $i, $e := split "x,y" ","}}{{$i}}={{$e}};{{end}} {{with .Names}}w={{.}}{{end}} {{- "  trimmed"}} {{println "ln"}}|{{slice "abcdef" 1 3}} {{html "<a>"}} {{js "a<b"}} {{urlquery "a b&"}} {{and 1 0}} {{or 0 "x"}} {{not true}} {{lt 1 2}} {{print 1 2 "a" "b" 3}}"#,
            &row(),
        )
        .expect("runs");
        // The docker CLI's output for the same template and container.
        assert_eq!(
            out,
            "1 WEB   web   | we Hello World [a b] a-b \"a=1,com.x=y\"  3.14|ab  |\"q\"|12|ff 3 b R 0=x;1=y; w=web  trimmed ln\n|bc &lt;a&gt; a\\u003Cb a+b%26 0 x false true 1 2ab3"
        );
    }

    #[test]
    fn a_struct_s_missing_field_fails_and_a_map_s_is_no_value() {
        let e = run("{{.Nope}}", &row()).unwrap_err();
        assert_eq!(
            e,
            "template: :1:2: executing \"\" at <.Nope>: can't evaluate field Nope in type *formatter.ContainerContext"
        );
        let e = run("table {{.Nope}}", &row()).unwrap_err();
        assert!(
            e.starts_with("template: :1:8: executing \"\" at <.Nope>"),
            "{e}"
        );
        let m = Value::raw_from_json(r#"{"State": {"Status": "up"}}"#).unwrap();
        assert_eq!(run("{{.Nope}}", &m).unwrap(), "<no value>");
        let t = Template::parse("", "{{.State.Nope}}").unwrap();
        assert_eq!(
            t.execute(&m, MissingKey::Error, FuncSet::Basic)
                .unwrap_err(),
            "template: :1:8: executing \"\" at <.State.Nope>: map has no entry for key \"Nope\""
        );
    }

    #[test]
    fn typed_json_prints_as_go_prints_structs_maps_and_nils() {
        let v = Value::typed_from_json(
            r#"{"State": {"Status": "running", "Running": true, "Pid": 7, "Health": null},
                "Config": {"Env": null, "Labels": {"b": "2", "a": "1"}, "Cmd": ["sh", "-c"]}}"#,
            "types.ContainerJSON",
        )
        .unwrap();
        assert_eq!(
            run("{{.State}} {{.Config.Env}} {{.Config.Labels}} {{json .Config.Labels}} {{json .State}} {{.Config.Cmd}} {{index .Config.Labels \"zz\"}}|", &v).unwrap(),
            "{running true 7 <nil>} [] map[a:1 b:2] {\"a\":\"1\",\"b\":\"2\"} {\"Status\":\"running\",\"Running\":true,\"Pid\":7,\"Health\":null} [sh -c] |"
        );
    }

    #[test]
    fn control_structures_variables_and_nested_templates() {
        let v =
            Value::raw_from_json(r#"{"A": [1, 2, 3, 4], "M": {"y": 2, "x": 1}, "E": []}"#).unwrap();
        assert_eq!(
            run("{{range .A}}{{if eq . 2}}{{continue}}{{end}}{{if gt . 3}}{{break}}{{end}}{{.}}{{end}}", &v).unwrap(),
            "13"
        );
        assert_eq!(
            run("{{range $k, $v := .M}}{{$k}}{{$v}} {{end}}", &v).unwrap(),
            "x1 y2 "
        );
        assert_eq!(
            run("{{range .E}}x{{else}}empty{{end}}", &v).unwrap(),
            "empty"
        );
        assert_eq!(
            run("{{$x := 1}}{{if true}}{{$x = 2}}{{end}}{{$x}}", &v).unwrap(),
            "2"
        );
        assert_eq!(
            run(
                r#"{{define "T"}}<{{.}}>{{end}}{{template "T" "a"}}{{block "B" 5}}[{{.}}]{{end}}"#,
                &v
            )
            .unwrap(),
            "<a>[5]"
        );
        assert_eq!(
            run("{{if false}}a{{else if true}}b{{else}}c{{end}}", &v).unwrap(),
            "b"
        );
        assert_eq!(
            run("{{/* a comment */}}x {{- /* trimmed */ -}} y", &v).unwrap(),
            "xy"
        );
        assert_eq!(
            run("{{(index .A 1)}} {{len .M}} {{range 3}}{{.}}{{end}}", &v).unwrap(),
            "2 2 012"
        );
        assert_eq!(run("{{\"}}\"}}", &v).unwrap(), "}}");
    }

    #[test]
    fn malformed_templates_fail_in_go_s_words() {
        let e = |s: &str| Template::parse("", s).unwrap_err().to_string();
        assert_eq!(e("{{.ID"), "template: :1: unclosed action");
        assert_eq!(
            e("{{foo .X}}"),
            "template: :1: function \"foo\" not defined"
        );
        assert_eq!(e("{{if .X}}a"), "template: :1: unexpected EOF");
        assert_eq!(e("{{end}}"), "template: :1: unexpected {{end}}");
        assert_eq!(e("{{$x}}"), "template: :1: undefined variable \"$x\"");
        assert_eq!(e("{{break}}"), "template: :1: {{break}} outside {{range}}");
        assert_eq!(e("a\n{{\"x}}"), "template: :2: unterminated quoted string");
        let v = Value::raw_from_json("{}").unwrap();
        assert_eq!(
            run("{{index 1 2}}", &v).unwrap_err(),
            "template: :1:2: executing \"\" at <index 1 2>: error calling index: can't index item of type int"
        );
        assert_eq!(
            run("{{upper 1}}", &v).unwrap_err(),
            "template: :1:2: executing \"\" at <upper 1>: wrong type for value; expected string; got int"
        );
    }
}
