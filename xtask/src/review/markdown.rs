//! The review as GitHub pull-request comments: parts of at most `max_bytes`,
//! split only between blocks (a summary line, a callout, a table row, one
//! object's `<details>`), so that no part ends inside a code block or a
//! `<details>`. A block that starts a part repeats what it needs to be read
//! there (a table's header, its section's title). One object whose diff alone
//! is too long is cut, saying so.

use super::Review;
use super::compare::{ChangeKind, ObjectChange};
use super::images::{ImageMove, Sources};
use anyhow::{Result, bail};
use std::rc::Rc;

/// The smallest `--max-bytes` that leaves room for a header and one block.
pub const MIN_BYTES: usize = 1024;

/// At most this many source commits are listed per image.
const MAX_COMMITS: usize = 20;

struct Block {
    text: String,
    /// Printed first when this block opens a part (not the first one).
    resume: Option<Rc<str>>,
}

/// The review as markdown parts, each at most `max_bytes` long.
pub fn parts(review: &Review, max_bytes: usize) -> Result<Vec<String>> {
    if max_bytes < MIN_BYTES {
        bail!("--max-bytes {max_bytes} is too small: at least {MIN_BYTES}");
    }
    let title = title(review);
    // Reserve room for the longest header any part could have.
    let budget = max_bytes - header(&title, 99_999, 99_999).len();
    let blocks = blocks(review, budget);
    let bodies = pack(&blocks, budget);
    let n = bodies.len();
    Ok(bodies
        .into_iter()
        .enumerate()
        .map(|(i, body)| format!("{}{body}", header(&title, i + 1, n)))
        .collect())
}

fn title(review: &Review) -> String {
    format!(
        "Deploy review: `{}` ({}) → `{}` ({})",
        escape(&review.base.spec),
        crate::cli::abbrev(&review.base.commit, crate::cli::REVIEW_COMMIT),
        escape(&review.head.spec),
        crate::cli::abbrev(&review.head.commit, crate::cli::REVIEW_COMMIT)
    )
}

fn header(title: &str, part: usize, of: usize) -> String {
    if of <= 1 {
        format!("### {title}\n\n")
    } else {
        format!("### {title}, part {part} of {of}\n\n")
    }
}

fn pack(blocks: &[Block], budget: usize) -> Vec<String> {
    let mut bodies: Vec<String> = Vec::new();
    let mut current = String::new();
    for block in blocks {
        if !current.is_empty() && current.len() + block.text.len() > budget {
            bodies.push(std::mem::take(&mut current));
        }
        if current.is_empty()
            && !bodies.is_empty()
            && let Some(resume) = &block.resume
        {
            current.push_str(resume);
        }
        current.push_str(&block.text);
    }
    if !current.is_empty() || bodies.is_empty() {
        bodies.push(current);
    }
    bodies
}

fn blocks(review: &Review, budget: usize) -> Vec<Block> {
    let mut blocks = vec![summary(review)];
    section(
        &mut blocks,
        "#### ⚠️ Look at these first",
        None,
        callout_items(review),
    );
    let table_head = "| service | environments | old | new | source commits that moved it |\n|---|---|---|---|---|\n";
    section(
        &mut blocks,
        "#### Images",
        Some(table_head),
        review.images.iter().map(image_row).collect(),
    );
    for live in &review.live {
        let title = format!(
            "#### Live: what syncing head would do to `{}` now (context `{}`): {}",
            live.env,
            escape(&live.context),
            live.sentence
        );
        let items = live
            .changes
            .iter()
            .map(|c| {
                let summary = format!("{} {}", escape(&c.object), action_word(c));
                match &c.diff {
                    Some(diff) => details(&summary, diff, budget),
                    None => format!("- {summary}\n"),
                }
            })
            .collect();
        section_always(&mut blocks, &title, None, items);
    }
    for env in &review.environments {
        let items = env
            .changes
            .changes
            .iter()
            .map(|c| object_details(c, budget))
            .collect();
        section(
            &mut blocks,
            &format!("#### Changes in {}", env.changes.env),
            None,
            items,
        );
    }
    blocks
}

fn action_word(change: &crate::gitops::LiveChange) -> String {
    let action = change.state.to_string();
    match &change.reason {
        Some(reason) => format!("{action}: {}", escape(reason)),
        None => action,
    }
}

fn summary(review: &Review) -> Block {
    let mut text = String::new();
    if review.environments.is_empty() {
        text.push_str("No environment's manifests differ.\n");
    }
    for env in &review.environments {
        let mark = if env.integrity.is_clean() {
            "✅"
        } else {
            "❌"
        };
        text.push_str(&format!(
            "- **{}**: {} · {mark} {}\n",
            env.changes.env,
            env.changes.summary(),
            escape(&env.integrity.describe(&env.changes.env))
        ));
    }
    text.push('\n');
    Block { text, resume: None }
}

fn callout_items(review: &Review) -> Vec<String> {
    review
        .callouts
        .iter()
        .map(|c| format!("- **{}** `{}`: {}\n", c.env, c.object, escape(&c.message)))
        .collect()
}

/// A titled section of blocks (nothing when there are none); the title is
/// repeated, marked continued, when a part starts inside it.
fn section(blocks: &mut Vec<Block>, title: &str, head: Option<&str>, items: Vec<String>) {
    if !items.is_empty() {
        section_always(blocks, title, head, items);
    }
}

fn section_always(blocks: &mut Vec<Block>, title: &str, head: Option<&str>, items: Vec<String>) {
    let head = head.unwrap_or("");
    let resume: Rc<str> = format!("{title} (continued)\n\n{head}").into();
    let count = items.len();
    let mut opening = format!("{title}\n\n{head}");
    if count == 0 {
        blocks.push(Block {
            text: format!("{opening}\n"),
            resume: None,
        });
        return;
    }
    for (i, mut item) in items.into_iter().enumerate() {
        if i + 1 == count {
            // A blank line ends the list or table before the next section.
            item.push('\n');
        }
        let text = if i == 0 {
            std::mem::take(&mut opening) + &item
        } else {
            item
        };
        blocks.push(Block {
            text,
            resume: Some(resume.clone()),
        });
    }
}

fn image_row(image: &ImageMove) -> String {
    let old = image
        .old
        .as_ref()
        .map_or("—".to_string(), |o| format!("`{}`", o.short()));
    let sources = match &image.sources {
        Sources::Commits { commits } if commits.is_empty() => {
            "no commit touched its inputs (same inputs, rebuilt)".to_string()
        }
        Sources::Commits { commits } => {
            let mut lines: Vec<String> = commits
                .iter()
                .take(MAX_COMMITS)
                .map(|c| format!("`{}` {}", c.short_id, escape(&c.subject)))
                .collect();
            if commits.len() > MAX_COMMITS {
                lines.push(format!("… and {} more", commits.len() - MAX_COMMITS));
            }
            lines.join("<br>")
        }
        Sources::Upstream => "upstream image (not built here)".to_string(),
        Sources::New => "new container".to_string(),
        Sources::Unknown { reason } => format!("unknown: {}", escape(reason)),
    };
    format!(
        "| {} | {} | {old} | `{}` | {sources} |\n",
        image.service,
        image.envs.join(", "),
        image.new.short()
    )
}

fn object_details(change: &ObjectChange, budget: usize) -> String {
    let what = match change.change {
        ChangeKind::Changed => "changed",
        ChangeKind::Added => "added",
        ChangeKind::Deleted => "deleted",
    };
    details(&format!("{} {what}", change.id), &change.diff, budget)
}

/// A collapsed diff. Cut (saying how much) when it would not fit a part.
fn details(summary: &str, diff: &str, budget: usize) -> String {
    let fence = "`".repeat(longest_backtick_run(diff).max(2) + 1);
    let wrap = |body: &str, note: &str| {
        format!(
            "<details><summary>{}</summary>\n\n{fence}diff\n{body}{fence}\n{note}\n</details>\n\n",
            escape(summary)
        )
    };
    let whole = wrap(diff, "");
    // The continued-section title may precede it: keep some room for that.
    let room = budget.saturating_sub(200);
    if whole.len() <= room {
        return whole;
    }
    let total = diff.lines().count();
    let note_for = |shown: usize| {
        format!(
            "\n{} more lines not shown: run `cargo xtask review --output text` to see all of it.\n",
            total - shown
        )
    };
    let frame = wrap("", &note_for(0)).len();
    let mut body = String::new();
    let mut shown = 0;
    for line in diff.lines() {
        if frame + body.len() + line.len() + 1 > room {
            break;
        }
        body.push_str(line);
        body.push('\n');
        shown += 1;
    }
    wrap(&body, &note_for(shown))
}

fn longest_backtick_run(text: &str) -> usize {
    let (mut best, mut run) = (0, 0);
    for c in text.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        best = best.max(run);
    }
    best
}

/// Text in markdown and HTML: no tags, no table breaks.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('|', "\\|")
}
