//! The output contract of every command with `-o/--output`: `text` for
//! people, `json` and `yaml` for machines, the same document in both, and on
//! failure an `error` document instead (see README, "Output for machines").

use serde::Serialize;
use std::io;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    #[default]
    Text,
    Json,
    Yaml,
}

impl Format {
    pub fn is_text(self) -> bool {
        self == Format::Text
    }
}

/// One document on stdout: pretty JSON, or YAML.
pub fn emit<T: Serialize>(format: Format, doc: &T) -> io::Result<()> {
    match format {
        Format::Json => {
            let text = serde_json::to_string_pretty(doc).map_err(io::Error::other)?;
            outln!("{text}")
        }
        Format::Yaml => {
            let text = serde_yaml::to_string(doc).map_err(io::Error::other)?;
            out!("{text}")
        }
        Format::Text => Err(io::Error::other("text output is the command's own")),
    }
}

/// One document of a stream (`sync --watch`): a JSON line, or a YAML
/// document that starts with `---`.
pub fn emit_streamed<T: Serialize>(format: Format, doc: &T) -> io::Result<()> {
    match format {
        Format::Json => {
            let text = serde_json::to_string(doc).map_err(io::Error::other)?;
            outln!("{text}")
        }
        Format::Yaml => {
            let text = serde_yaml::to_string(doc).map_err(io::Error::other)?;
            out!("---\n{text}")
        }
        Format::Text => Err(io::Error::other("text output is the command's own")),
    }
}

/// What a failed command prints on stdout in json/yaml mode, so a script
/// always gets a document: `{"error": {"message", "causes", "exitCode"}}`.
#[derive(Serialize)]
pub struct ErrorDoc {
    pub error: ErrorBody,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    pub message: String,
    pub causes: Vec<String>,
    pub exit_code: u8,
}

impl ErrorDoc {
    pub fn new(err: &anyhow::Error, exit_code: u8) -> ErrorDoc {
        ErrorDoc {
            error: ErrorBody {
                message: super::one_line(err),
                causes: super::causes(err),
                exit_code,
            },
        }
    }
}
