//! Reading PINs and recovery secrets: from the terminal with echo off, or, when standard input
//! is not a terminal (scripts, tests), one line per secret from standard input.

use std::collections::VecDeque;
use std::io::{BufRead, IsTerminal, Write};

use rustix::termios::{LocalModes, OptionalActions, tcgetattr, tcsetattr};
use zeroize::Zeroizing;

/// Reads secrets in order; prompts go to stderr only when a terminal is attached.
pub struct SecretInput {
    source: Source,
}

enum Source {
    Terminal,
    Stdin,
    /// Given lines (tests and programs that embed the CLI).
    Lines(VecDeque<Zeroizing<String>>),
}

impl Default for SecretInput {
    fn default() -> Self {
        let source = if std::io::stdin().is_terminal() {
            Source::Terminal
        } else {
            Source::Stdin
        };
        SecretInput { source }
    }
}

impl SecretInput {
    pub fn from_lines<I: IntoIterator<Item = S>, S: Into<String>>(lines: I) -> Self {
        SecretInput {
            source: Source::Lines(
                lines
                    .into_iter()
                    .map(|l| Zeroizing::new(l.into()))
                    .collect(),
            ),
        }
    }

    /// One secret, without its line ending. End of input is an error naming `what`.
    pub fn read(&mut self, prompt: &str, what: &str) -> Result<Zeroizing<String>, String> {
        let line = match &mut self.source {
            Source::Terminal => {
                eprint!("{prompt}: ");
                let _ = std::io::stderr().flush();
                let line = read_line_without_echo()?;
                eprintln!();
                line
            }
            Source::Stdin => read_line()?,
            Source::Lines(lines) => lines.pop_front().unwrap_or_default(),
        };
        let trimmed = Zeroizing::new(line.trim_end_matches(['\r', '\n']).to_string());
        if trimmed.is_empty() {
            return Err(format!("no {what} given"));
        }
        Ok(trimmed)
    }

    /// A new secret; on a terminal it is asked twice and must match.
    pub fn read_new(&mut self, prompt: &str, what: &str) -> Result<Zeroizing<String>, String> {
        let first = self.read(prompt, what)?;
        if matches!(self.source, Source::Terminal) {
            let again = self.read(&format!("{prompt} (again)"), what)?;
            if *again != *first {
                return Err(format!("the two {what}s differ"));
            }
        }
        Ok(first)
    }
}

fn read_line() -> Result<Zeroizing<String>, String> {
    let mut line = Zeroizing::new(String::new());
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| format!("cannot read standard input: {e}"))?;
    Ok(line)
}

fn read_line_without_echo() -> Result<Zeroizing<String>, String> {
    let stdin = std::io::stdin();
    let saved = tcgetattr(&stdin).map_err(|e| format!("terminal: {e}"))?;
    let mut quiet = saved.clone();
    quiet.local_modes.remove(LocalModes::ECHO);
    tcsetattr(&stdin, OptionalActions::Flush, &quiet).map_err(|e| format!("terminal: {e}"))?;
    let line = read_line();
    let restored = tcsetattr(&stdin, OptionalActions::Flush, &saved);
    let line = line?;
    restored.map_err(|e| format!("terminal: {e}"))?;
    Ok(line)
}
