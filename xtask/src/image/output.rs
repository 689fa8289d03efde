//! What build/build-all show: a progress line per service on stderr, then a
//! table (or JSON) on stdout.

use anyhow::Result;
use bollard::models::ImageInspect;
use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Cached,
    Built,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Row {
    pub service: String,
    /// Image name without registry or tag.
    pub repo: String,
    pub content_tag: String,
    pub commit_tag: String,
    pub image_id: String,
    pub size: u64,
    pub digest: Option<String>,
    pub registry: Option<String>,
    pub outcome: Outcome,
    /// The commit the image was built from (its revision label).
    #[serde(skip)]
    pub revision: Option<String>,
}

impl Row {
    pub fn new(
        service: &str,
        repo: String,
        content_tag: String,
        commit_tag: String,
        outcome: Outcome,
    ) -> Row {
        Row {
            service: service.to_string(),
            repo,
            content_tag,
            commit_tag,
            image_id: String::new(),
            size: 0,
            digest: None,
            registry: None,
            outcome,
            revision: None,
        }
    }

    pub fn fill_from(&mut self, image: &ImageInspect) {
        self.image_id = image.id.clone().unwrap_or_default();
        self.size = image.size.and_then(|s| u64::try_from(s).ok()).unwrap_or(0);
        self.revision = image
            .config
            .as_ref()
            .and_then(|c| c.labels.as_ref())
            .and_then(|l| l.get("org.opencontainers.image.revision").cloned());
    }
}

pub fn progress(service: &str, what: &str) {
    eprintln!("{service:<14} {what}");
}

pub fn print(rows: &[Row], format: crate::cli::Format) -> Result<()> {
    match format {
        crate::cli::Format::Text => out!("{}", table(rows))?,
        format => crate::cli::output::emit(format, &rows)?,
    }
    Ok(())
}

fn table(rows: &[Row]) -> String {
    use crate::cli::table::{Align, aligned};
    let header = ["SERVICE", "TAG", "COMMIT TAG", "SIZE", "STATUS", "DIGEST"];
    let lines: Vec<Vec<String>> = std::iter::once(header.map(String::from).to_vec())
        .chain(rows.iter().map(|r| {
            let outcome = match r.outcome {
                Outcome::Cached => "cached",
                Outcome::Built => "built",
            };
            vec![
                r.service.clone(),
                r.content_tag.clone(),
                r.commit_tag.clone(),
                human_size(r.size),
                outcome.to_string(),
                r.digest.clone().unwrap_or_else(|| "-".to_string()),
            ]
        }))
        .collect();
    let align = [Align::Left, Align::Left, Align::Left, Align::Right];
    aligned(&lines, &align)
}

fn human_size(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1_000_000.0)
}
