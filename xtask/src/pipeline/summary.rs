//! The end of a run: a table (stage, result, seconds), or JSON, and JUnit XML.

use super::stages::Stage;
use crate::cli::Format;
use anyhow::{Context, Result};
use std::path::Path;

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Passed,
    Failed,
    Skipped,
}

impl Outcome {
    pub fn word(self) -> &'static str {
        match self {
            Outcome::Passed => "passed",
            Outcome::Failed => "FAILED",
            Outcome::Skipped => "skipped",
        }
    }
}

pub struct StageResult {
    pub stage: Stage,
    pub outcome: Outcome,
    pub seconds: f64,
    pub detail: String,
}

pub fn report(
    env: &str,
    results: &[StageResult],
    format: Format,
    junit: Option<&Path>,
) -> Result<()> {
    if let Some(path) = junit {
        write_junit(path, env, results)?;
    }
    match format {
        Format::Text => out!("{}", table(results))?,
        // The last document on stdout: the stages print their own progress above it.
        format => crate::cli::output::emit_streamed(format, &json(env, results))?,
    }
    Ok(())
}

pub fn table(results: &[StageResult]) -> String {
    use crate::cli::table::{Align, aligned};
    let header = ["STAGE", "RESULT", "SECONDS"].map(String::from).to_vec();
    let rows: Vec<Vec<String>> = std::iter::once(header)
        .chain(results.iter().map(|r| {
            vec![
                r.stage.name().to_string(),
                r.outcome.word().to_string(),
                format!("{:.1}", r.seconds),
            ]
        }))
        .collect();
    format!(
        "\n{}",
        aligned(&rows, &[Align::Left, Align::Left, Align::Right])
    )
}

pub fn json(env: &str, results: &[StageResult]) -> serde_json::Value {
    let failed = results
        .iter()
        .find(|r| r.outcome == Outcome::Failed)
        .map(|r| r.stage.name());
    serde_json::json!({
        "env": env,
        "result": if failed.is_some() { "failed" } else { "passed" },
        "failed": failed,
        "stages": results.iter().map(|r| serde_json::json!({
            "stage": r.stage.name(),
            "result": r.outcome.word().to_lowercase(),
            "seconds": (r.seconds * 1000.0).round() / 1000.0,
            "detail": r.detail,
        })).collect::<Vec<_>>(),
    })
}

/// One testsuite `pipeline.<env>`, one testcase per stage.
pub fn junit(env: &str, results: &[StageResult]) -> String {
    let failures = results
        .iter()
        .filter(|r| r.outcome == Outcome::Failed)
        .count();
    let skipped = results
        .iter()
        .filter(|r| r.outcome == Outcome::Skipped)
        .count();
    let total: f64 = results.iter().map(|r| r.seconds).sum();
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    xml.push_str(&format!(
        "<testsuites>\n  <testsuite name=\"pipeline.{}\" tests=\"{}\" failures=\"{failures}\" skipped=\"{skipped}\" time=\"{total:.3}\">\n",
        escape(env),
        results.len()
    ));
    for r in results {
        xml.push_str(&format!(
            "    <testcase classname=\"pipeline.{}\" name=\"{}\" time=\"{:.3}\"",
            escape(env),
            r.stage.name(),
            r.seconds
        ));
        match r.outcome {
            Outcome::Passed => xml.push_str(&format!(
                ">\n      <system-out>{}</system-out>\n    </testcase>\n",
                escape(&r.detail)
            )),
            Outcome::Failed => xml.push_str(&format!(
                ">\n      <failure message=\"{}\"/>\n    </testcase>\n",
                escape(&r.detail)
            )),
            Outcome::Skipped => xml.push_str(&format!(
                ">\n      <skipped message=\"{}\"/>\n    </testcase>\n",
                escape(&r.detail)
            )),
        }
    }
    xml.push_str("  </testsuite>\n</testsuites>\n");
    xml
}

fn write_junit(path: &Path, env: &str, results: &[StageResult]) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(path, junit(env, results)).with_context(|| format!("writing {}", path.display()))
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn results() -> Vec<StageResult> {
        vec![
            StageResult {
                stage: Stage::Build,
                outcome: Outcome::Passed,
                seconds: 1.25,
                detail: "images pushed".into(),
            },
            StageResult {
                stage: Stage::Release,
                outcome: Outcome::Failed,
                seconds: 0.5,
                detail: "render <x> & \"y\"".into(),
            },
            StageResult {
                stage: Stage::Publish,
                outcome: Outcome::Skipped,
                seconds: 0.0,
                detail: "not run: release failed".into(),
            },
        ]
    }

    #[test]
    fn junit_has_one_testcase_per_stage_and_escapes_details() {
        let xml = junit("minikube", &results());
        assert!(
            xml.contains("tests=\"3\" failures=\"1\" skipped=\"1\""),
            "{xml}"
        );
        assert!(xml.contains("name=\"release\""), "{xml}");
        assert!(
            xml.contains("<failure message=\"render &lt;x&gt; &amp; &quot;y&quot;\"/>"),
            "{xml}"
        );
        assert!(
            xml.contains("<skipped message=\"not run: release failed\"/>"),
            "{xml}"
        );
    }

    #[test]
    fn json_names_the_failed_stage() {
        let value = json("minikube", &results());
        assert_eq!(value["failed"], "release");
        assert_eq!(value["result"], "failed");
        assert_eq!(value["stages"][2]["result"], "skipped");
    }
}
