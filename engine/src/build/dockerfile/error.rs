//! Errors of the Dockerfile front end, in Docker's words: the parser's (`failed to parse
//! Dockerfile: ...` once the build names the file) and the instructions' (`dockerfile
//! parse error line 3: unknown instruction: FORM`).

/// The parser refused the text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// A bad or repeated parser directive.
    #[error("{0}")]
    Directive(String),
    /// An instruction's arguments do not split by the rules of its kind.
    #[error("{0}")]
    Line(String),
    /// An error in the instruction starting at this line.
    #[error("{inner}")]
    At {
        /// First line of the instruction (1-based).
        line: usize,
        /// What is wrong with it.
        inner: Box<ParseError>,
    },
    /// Nothing but comments and blank lines.
    #[error("file with no instructions")]
    NoInstructions,
    /// A line longer than Docker's scanner reads.
    #[error("dockerfile line greater than max allowed size of {0}")]
    LineTooLong(usize),
}

/// An instruction that parsed but is not valid (an unknown name, wrong arguments or
/// flags), with the line it starts on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("dockerfile parse error line {line}: {message}")]
pub struct InstructionError {
    /// First line of the instruction (1-based).
    pub line: usize,
    /// What is wrong, in Docker's words.
    pub message: String,
}

/// Any error of the front end.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The text does not parse.
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// An instruction is not valid.
    #[error(transparent)]
    Instruction(#[from] InstructionError),
    /// An instruction comes before the first `FROM`.
    #[error("no build stage in current context")]
    NoStage,
}
