//! The Dockerfile front end: text in, typed stages and instructions out, with Docker's
//! grammar and Docker's error words (and line numbers). No I/O: the build reads the
//! file from its context and hands the text here.
//!
//! - [`parser`]: directives, comments, continuations, each instruction's arguments.
//! - [`instructions`]: typed, checked instructions grouped into stages.
//! - [`shell`]: variable substitution, applied when an instruction is dispatched.

mod error;
pub mod instructions;
pub mod parser;
pub mod shell;

pub use error::{Error, InstructionError, ParseError};
pub use instructions::{CmdLine, CopyArgs, Health, Instruction, Kind, Stage};

/// A parsed Dockerfile.
#[derive(Debug, Clone)]
pub struct Dockerfile {
    /// `ARG`s before the first `FROM` (they may be used in FROM lines).
    pub meta_args: Vec<Instruction>,
    /// The stages, in order.
    pub stages: Vec<Stage>,
    /// The escape character.
    pub escape: char,
    /// Warnings for the user.
    pub warnings: Vec<String>,
}

/// Parses a Dockerfile's text.
pub fn parse(text: &str) -> Result<Dockerfile, Error> {
    let parsed = parser::parse(text)?;
    let mut meta_args = Vec::new();
    let mut stages: Vec<Stage> = Vec::new();
    for node in &parsed.nodes {
        match instructions::parse_node(node)? {
            instructions::Parsed::Stage(s) => stages.push(s),
            instructions::Parsed::Instruction(i) => match stages.last_mut() {
                Some(stage) => stage.commands.push(i),
                None if matches!(i.kind, Kind::Arg(_)) => meta_args.push(i),
                None => return Err(Error::NoStage),
            },
        }
    }
    Ok(Dockerfile {
        meta_args,
        stages,
        escape: parsed.escape,
        warnings: parsed.warnings,
    })
}

/// Parses the instructions of `docker commit --change` / `docker import --change` (and
/// an ONBUILD trigger): instructions without a stage.
pub fn parse_changes(text: &str) -> Result<(Vec<Instruction>, char), Error> {
    let parsed = parser::parse(text)?;
    let mut out = Vec::new();
    for node in &parsed.nodes {
        match instructions::parse_node(node)? {
            instructions::Parsed::Instruction(i) => out.push(i),
            instructions::Parsed::Stage(_) => {
                return Err(Error::Instruction(InstructionError {
                    line: node.start_line,
                    message: "FROM is not a valid change command".into(),
                }))
            }
        }
    }
    Ok((out, parsed.escape))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_and_meta_args() {
        let df = parse(
            "ARG BASE=busybox\nFROM $BASE AS build\nRUN make\nFROM scratch\nCOPY --from=build /out /\n",
        )
        .unwrap();
        assert_eq!(df.meta_args.len(), 1);
        assert_eq!(df.stages.len(), 2);
        assert_eq!(df.stages[0].name.as_deref(), Some("build"));
        assert_eq!(df.stages[0].commands.len(), 1);
        assert_eq!(df.stages[1].base, "scratch");
        assert_eq!(df.stages[1].commands[0].code, "COPY --from=build /out /");
    }

    #[test]
    fn errors_in_dockers_words() {
        assert_eq!(
            parse("ENV A=1\n").unwrap_err().to_string(),
            "no build stage in current context"
        );
        assert_eq!(
            parse("FROM a\nRUN true\nFORM x\n").unwrap_err().to_string(),
            "dockerfile parse error line 3: unknown instruction: FORM"
        );
        assert_eq!(
            parse("# comment only\n").unwrap_err().to_string(),
            "file with no instructions"
        );
        assert_eq!(
            parse("FROM a\nENV A\n").unwrap_err().to_string(),
            "ENV must have two arguments"
        );
    }

    #[test]
    fn changes() {
        let (c, _) = parse_changes("ENV A=1\nCMD [\"sh\"]").unwrap();
        assert_eq!(c.len(), 2);
        assert!(parse_changes("FROM x").is_err());
    }
}
