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
    let mut text = format!(
        "{:<14} {:<24} {:<20} {:>9}  {:<7} DIGEST\n",
        "SERVICE", "TAG", "COMMIT TAG", "SIZE", "STATUS"
    );
    for r in rows {
        let outcome = match r.outcome {
            Outcome::Cached => "cached",
            Outcome::Built => "built",
        };
        text.push_str(&format!(
            "{:<14} {:<24} {:<20} {:>9}  {:<7} {}\n",
            r.service,
            r.content_tag,
            r.commit_tag,
            human_size(r.size),
            outcome,
            r.digest.as_deref().unwrap_or("-")
        ));
    }
    text
}

fn human_size(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1_000_000.0)
}
