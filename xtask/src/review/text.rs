//! The review for a terminal: the same sections as markdown, plain text,
//! coloured as `--color` decides (crate::cli::colour).

use super::Review;
use super::images::Sources;
use crate::gitops::output::{coloured_diff, paint, table};

pub fn render(review: &Review, colour: bool) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "{}\n",
        paint(
            &format!(
                "review {} ({}) -> {} ({})",
                review.base.spec,
                crate::cli::abbrev(&review.base.commit, crate::cli::REVIEW_COMMIT),
                review.head.spec,
                crate::cli::abbrev(&review.head.commit, crate::cli::REVIEW_COMMIT)
            ),
            "1",
            colour
        )
    ));
    if review.environments.is_empty() {
        out.push_str("no environment's manifests differ\n");
    }
    for env in &review.environments {
        let name = &env.changes.env;
        out.push_str(&format!("{name}: {}\n", env.changes.summary()));
        let line = env.integrity.describe(name);
        let code = if env.integrity.is_clean() { "32" } else { "31" };
        out.push_str(&format!("  {}\n", paint(&line, code, colour)));
    }
    if !review.callouts.is_empty() {
        out.push_str(&format!(
            "\n{}\n",
            paint("look at these first:", "1", colour)
        ));
        for c in &review.callouts {
            let line = format!("  ! {} {}: {}", c.env, c.object, c.message);
            out.push_str(&format!("{}\n", paint(&line, "33", colour)));
        }
    }
    if !review.images.is_empty() {
        out.push_str(&format!("\n{}\n", paint("images:", "1", colour)));
        let mut rows = vec![vec![
            "SERVICE".into(),
            "ENVS".into(),
            "OLD".into(),
            "NEW".into(),
        ]];
        for image in &review.images {
            rows.push(vec![
                image.service.clone(),
                image.envs.join(","),
                image.old.as_ref().map_or("-".to_string(), |o| o.short()),
                image.new.short(),
            ]);
        }
        out.push_str(&table(&rows));
        for image in &review.images {
            match &image.sources {
                Sources::Commits { commits } if !commits.is_empty() => {
                    out.push_str(&format!("  {} moved by:\n", image.service));
                    for c in commits {
                        out.push_str(&format!(
                            "    {} {}\n",
                            paint(&c.short_id, "33", colour),
                            c.subject
                        ));
                    }
                }
                Sources::Commits { .. } => out.push_str(&format!(
                    "  {}: no commit touched its inputs\n",
                    image.service
                )),
                Sources::Unknown { reason } => {
                    out.push_str(&format!(
                        "  {}: source commits unknown: {reason}\n",
                        image.service
                    ));
                }
                Sources::Upstream | Sources::New => {}
            }
        }
    }
    for live in &review.live {
        out.push_str(&format!(
            "\n{}\n",
            paint(
                &format!(
                    "live ({}, context {}): {}",
                    live.env, live.context, live.sentence
                ),
                "1",
                colour
            )
        ));
        for change in &live.changes {
            match &change.diff {
                Some(diff) => out.push_str(&coloured_diff(diff, colour)),
                None => out.push_str(&format!(
                    "  {}: {}\n",
                    change.object,
                    change.reason.as_deref().unwrap_or("")
                )),
            }
        }
    }
    for env in &review.environments {
        for change in &env.changes.changes {
            out.push_str(&format!(
                "\n{}\n",
                paint(
                    &format!(
                        "{} {} ({})",
                        env.changes.env,
                        change.id,
                        change.change.as_str()
                    ),
                    "1",
                    colour
                )
            ));
            out.push_str(&coloured_diff(&change.diff, colour));
        }
    }
    out
}

pub fn print(review: &Review) -> std::io::Result<()> {
    out!("{}", render(review, crate::cli::colour::enabled()))
}
