//! docker's output formatting for listings (`ps`, `images`, `volume ls`, `system df`,
//! `stats`, `context ls`): `--format` is `table` (the default), `table TEMPLATE`,
//! `json` (`{{json .}}`), `raw`, or a template; each row is a struct of docker's
//! context type (so `{{.Nope}}` fails naming it), tables get the header row docker
//! prints (`CONTAINER ID`, `VOLUME NAME`, ...) and go through Go's tabwriter (minimum
//! width 10, padding 3). As docker's formatter, `\t` and `\n` written in the format are
//! a tab and a newline, and the spaces around it are trimmed.

use crate::error::{Error, Result};
use crate::tabwriter;
use crate::template::{FuncSet, MissingKey, Struct, Template, Value};

/// What a listing's rows are.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    /// docker's context type, as template errors name it.
    pub type_name: &'static str,
    /// The table docker prints when no format is given.
    pub default_table: &'static str,
    /// The `raw` format.
    pub raw: &'static str,
    /// Each field's column header.
    pub headers: &'static [(&'static str, &'static str)],
}

/// `table`, `json` and `raw` as the templates they stand for.
pub fn resolve<'a>(format: Option<&'a str>, spec: &Spec) -> &'a str
where
    'static: 'a,
{
    match format.map(str::trim) {
        None | Some("") | Some("table") => spec.default_table,
        Some("raw") => spec.raw,
        Some("json") => "{{json .}}",
        Some(_) => format.unwrap_or_default(),
    }
}

/// Whether a format is a table (starts with `table`).
pub fn is_table(format: &str) -> bool {
    format.starts_with("table")
}

/// The template text docker runs: without `table`, trimmed, `\t` and `\n` unescaped.
fn final_format(format: &str) -> String {
    let f = format.strip_prefix("table").unwrap_or(format);
    f.trim_matches(' ')
        .replace("\\t", "\t")
        .replace("\\n", "\n")
}

/// A row: docker's context struct with its fields and its labels (for `.Label`).
pub fn row(spec: &Spec, fields: Vec<(String, Value)>, labels: Vec<(String, String)>) -> Struct {
    let mut s = Struct::new(spec.type_name, fields);
    s.hidden = labels;
    s.json_sorted = true;
    s.methods.push(("Label", label));
    s
}

fn label(s: &Struct, args: &[Value]) -> std::result::Result<Value, String> {
    match args {
        [Value::Str(k)] => Ok(Value::Str(s.hidden(k).unwrap_or_default().to_string())),
        [other] => Err(format!(
            "wrong type for value; expected string; got {}",
            other.type_name()
        )),
        _ => Err(format!(
            "wrong number of args for Label: want 1 got {}",
            args.len()
        )),
    }
}

/// The header row's data: each field's header; `.Label "a.b-c"` heads as `b c`.
fn header(spec: &Spec) -> Value {
    let mut s = Struct::new(
        "formatter.SubHeaderContext",
        spec.headers
            .iter()
            .map(|(k, v)| (k.to_string(), Value::from(*v)))
            .collect(),
    );
    s.map_like = true;
    s.methods.push(("Label", |_, args| {
        let name = match args {
            [Value::Str(n)] => n.as_str(),
            _ => "",
        };
        let last = name.rsplit('.').next().unwrap_or(name);
        Ok(Value::Str(last.replace(['-', '_'], " ")))
    }));
    s.into()
}

/// Renders the rows with a format already resolved (see [`resolve`]).
pub fn render(format: &str, spec: &Spec, rows: &[Struct]) -> Result<String> {
    let text = final_format(format);
    let t = Template::parse("", &text)
        .map_err(|e| Error::Usage(format!("template parsing error: {e}")))?;
    let mut body = String::new();
    for r in rows {
        let out = t
            .execute(
                &Value::Struct(std::rc::Rc::new(r.clone())),
                MissingKey::Default,
                FuncSet::Basic,
            )
            .map_err(|e| Error::Usage(format!("template parsing error: {e}")))?;
        body.push_str(&out);
        body.push('\n');
    }
    if !is_table(format) {
        return Ok(body);
    }
    // The header row: docker ignores an error there and keeps what came before it.
    let head = t
        .execute(&header(spec), MissingKey::Default, FuncSet::Header)
        .unwrap_or_default();
    Ok(tabwriter::align(&format!("{head}\n{body}"), 10, 3))
}

/// Renders and prints.
pub fn print(format: Option<&str>, spec: &Spec, rows: &[Struct]) -> Result<()> {
    let f = resolve(format, spec);
    print!("{}", render(f, spec, rows)?);
    Ok(())
}

/// Checks a format against an empty row before anything is asked of berthd, as
/// docker's `ps` does (so a bad field fails even with no containers).
pub fn precheck(format: &str, empty: &Struct) -> Result<()> {
    let t = Template::parse("", format)
        .map_err(|e| Error::Usage(format!("failed to parse template: {e}")))?;
    t.execute(
        &Value::Struct(std::rc::Rc::new(empty.clone())),
        MissingKey::Default,
        FuncSet::Basic,
    )
    .map_err(|e| Error::Usage(format!("failed to execute template: {e}")))?;
    Ok(())
}

/// A single object (`version`, `info`, `inspect`) through a template: with
/// `missingkey=error` when `strict`. Errors as `prefix: ...`.
pub fn object(
    format: &str,
    name: &str,
    data: &Value,
    strict: bool,
) -> std::result::Result<String, String> {
    let t = Template::parse(name, format).map_err(|e| e.to_string())?;
    let mk = if strict {
        MissingKey::Error
    } else {
        MissingKey::Default
    };
    t.execute(data, mk, FuncSet::Basic)
}

/// As [`object`] for a command that executes straight to stdout (`version`, `info`):
/// prints what the template wrote, then a newline, and gives the error if any.
pub fn print_object(format: &str, name: &str, data: &Value) -> std::result::Result<(), String> {
    let (out, err) = match Template::parse(name, format) {
        Ok(t) => t.execute_partial(data, MissingKey::Default),
        Err(e) => (String::new(), Some(e.to_string())),
    };
    println!("{out}");
    err.map_or(Ok(()), Err)
}

/// `Vec<(&str, String)>` as row fields.
pub fn fields(pairs: Vec<(&str, Value)>) -> Vec<(String, Value)> {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: Spec = Spec {
        type_name: "*formatter.volumeContext",
        default_table: "table {{.Driver}}\t{{.Name}}",
        raw: "name: {{.Name}}\ndriver: {{.Driver}}\n",
        headers: &[("Name", "VOLUME NAME"), ("Driver", "DRIVER")],
    };

    fn rows() -> Vec<Struct> {
        vec![
            row(
                &SPEC,
                fields(vec![("Name", "v1".into()), ("Driver", "local".into())]),
                vec![],
            ),
            row(
                &SPEC,
                fields(vec![("Name", "v2".into()), ("Driver", "local".into())]),
                vec![("k".into(), "v".into())],
            ),
        ]
    }

    #[test]
    fn tables_raw_json_and_templates_as_docker_prints_them() {
        let r = rows();
        let table = render(resolve(None, &SPEC), &SPEC, &r).unwrap();
        assert_eq!(table, "DRIVER    VOLUME NAME\nlocal     v1\nlocal     v2\n");
        let t = render(
            resolve(
                Some(r#"table {{.Name}}\t{{.Label "com.k-x"}}\t{{upper .Driver}}"#),
                &SPEC,
            ),
            &SPEC,
            &r,
        )
        .unwrap();
        assert_eq!(t, "VOLUME NAME   k x       DRIVER\nv1                      LOCAL\nv2                      LOCAL\n");
        assert_eq!(
            render(resolve(Some("raw"), &SPEC), &SPEC, &r).unwrap(),
            "name: v1\ndriver: local\n\nname: v2\ndriver: local\n\n"
        );
        assert_eq!(
            render(resolve(Some("json"), &SPEC), &SPEC, &r[..1]).unwrap(),
            "{\"Driver\":\"local\",\"Name\":\"v1\"}\n"
        );
        assert_eq!(
            render(
                resolve(Some("{{.Name}}\\t{{.Label \"k\"}}"), &SPEC),
                &SPEC,
                &r
            )
            .unwrap(),
            "v1\t\nv2\tv\n"
        );
        // No rows: a table still has its header.
        assert_eq!(
            render(SPEC.default_table, &SPEC, &[]).unwrap(),
            "DRIVER    VOLUME NAME\n"
        );
        let e = render("{{.Nope}}", &SPEC, &r).unwrap_err().to_string();
        assert_eq!(e, "template parsing error: template: :1:2: executing \"\" at <.Nope>: can't evaluate field Nope in type *formatter.volumeContext");
    }
}
