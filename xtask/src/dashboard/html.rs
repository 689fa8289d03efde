//! The page, rendered on the server. Every value from git or the cluster goes
//! through [`escape`]; the only markup is written here. `main` is also what
//! `/events` pushes, so the live update is the same HTML as a reload.

use super::state::{Banner, CommitInfo, EnvState, ImageView, ObjectView, Snapshot};
use crate::gitops::rollout::Health;
use std::fmt::Write as _;

/// Text made safe for element content and quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// The whole document around [`main`].
pub fn page(snapshot: &Snapshot) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>micro dashboard</title><link rel=\"stylesheet\" href=\"/app.css\">\
         <script src=\"/app.js\" defer></script></head>\n<body><header><h1>micro</h1>\
         <span id=\"live\" class=\"live\">loaded</span></header>\n<main id=\"main\">{}</main></body></html>\n",
        main(snapshot)
    )
}

/// One section per environment.
pub fn main(snapshot: &Snapshot) -> String {
    let mut out = String::new();
    for env in &snapshot.environments {
        environment(&mut out, env);
    }
    out
}

fn environment(out: &mut String, env: &EnvState) {
    let name = escape(&env.name);
    let _ = write!(
        out,
        "<section class=\"env\" id=\"env-{name}\" data-env=\"{name}\"><h2>{name} <small>context {}</small></h2>",
        escape(&env.context)
    );
    if let Some(banner) = &env.banner {
        banner_html(out, banner);
    }
    commits(out, env);
    counts(out, env);
    objects(out, env);
    endpoints(out, env);
    out.push_str("</section>\n");
}

fn banner_html(out: &mut String, banner: &Banner) {
    let _ = write!(
        out,
        "<div class=\"banner banner-{kind}\" role=\"alert\" data-banner=\"{kind}\">{}</div>",
        escape(&banner.message),
        kind = escape(banner.kind)
    );
}

fn commit_line(c: &CommitInfo) -> String {
    let mut line = format!("<code>{}</code> {}", escape(&c.short), escape(&c.subject));
    if !c.author.is_empty() {
        let _ = write!(
            line,
            " <span class=\"who\">{}, {}</span>",
            escape(&c.author),
            utc(c.time)
        );
    }
    if c.deploy {
        line.push_str(" <span class=\"tag\">deploy</span>");
    }
    line
}

fn commits(out: &mut String, env: &EnvState) {
    out.push_str("<dl class=\"commits\">");
    let head = env.head.as_ref().map_or("-".to_string(), commit_line);
    let _ = write!(out, "<dt>HEAD</dt><dd class=\"head\">{head}</dd>");
    let synced = env
        .synced
        .as_ref()
        .map_or("none (never synced by xtask)".to_string(), commit_line);
    let _ = write!(
        out,
        "<dt>last synced</dt><dd class=\"synced\">{synced}</dd>"
    );
    let ahead = match (env.synced.as_ref(), env.commits_ahead) {
        (None, _) => String::new(),
        (Some(_), Some(0)) => "HEAD is the synced commit".into(),
        (Some(_), Some(1)) => "1 commit ahead".into(),
        (Some(_), Some(n)) => format!("{n} commits ahead"),
        (Some(_), None) => "HEAD does not descend from the synced commit".into(),
    };
    let _ = write!(out, "<dt>git</dt><dd class=\"ahead\">{ahead}</dd></dl>");
    if !env.commits.is_empty() {
        out.push_str("<ol class=\"between\">");
        for c in &env.commits {
            let class = if c.deploy { " class=\"deploy\"" } else { "" };
            let _ = write!(out, "<li{class}>{}</li>", commit_line(c));
        }
        out.push_str("</ol>");
    }
}

fn counts(out: &mut String, env: &EnvState) {
    let mut parts: Vec<String> = env
        .counts
        .iter()
        .map(|c| format!("{} {}", c.count, escape(c.state)))
        .collect();
    if env.not_ready > 0 {
        parts.push(format!("{} not ready", env.not_ready));
    }
    let _ = write!(out, "<p class=\"counts\">{}</p>", parts.join(", "));
}

fn objects(out: &mut String, env: &EnvState) {
    out.push_str(
        "<table class=\"objects\"><thead><tr><th>kind</th><th>name</th><th>state</th>\
         <th>rollout</th><th>images</th><th>metadata</th></tr></thead><tbody>",
    );
    for object in &env.objects {
        row(out, &env.name, object);
    }
    out.push_str("</tbody></table>");
}

fn slug(state: &str) -> String {
    state
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join("-")
}

fn row(out: &mut String, env: &str, o: &ObjectView) {
    let (kind, ns, name) = (escape(&o.kind), escape(&o.namespace), escape(&o.name));
    let shown = if o.namespace.is_empty() {
        name.clone()
    } else {
        format!("{ns}/{name}")
    };
    let _ = write!(
        out,
        "<tr class=\"obj state-{}\" data-kind=\"{kind}\" data-namespace=\"{ns}\" data-name=\"{name}\" \
         data-state=\"{}\"><td>{kind}</td><td class=\"name\">{shown}</td><td class=\"state\">{}</td>\
         <td class=\"rollout\">{}</td><td class=\"images\">",
        slug(o.state),
        escape(o.state),
        escape(o.state),
        rollout(o)
    );
    for image in &o.images {
        image_html(out, image);
    }
    out.push_str("</td><td class=\"meta\">");
    metadata(out, env, o);
    out.push_str("</td></tr>");
    if let Some(diff) = &o.diff {
        let _ = write!(
            out,
            "<tr class=\"diff\"><td colspan=\"6\"><details data-id=\"diff/{}/{kind}/{ns}/{name}\">\
             <summary>diff live → git</summary><pre>{}</pre></details></td></tr>",
            escape(env),
            escape(diff)
        );
    }
}

fn rollout(o: &ObjectView) -> String {
    let mut text = match &o.replicas {
        Some(r) => format!("<span class=\"replicas\">{}/{}</span> ", r.ready, r.desired),
        None => String::new(),
    };
    match &o.health {
        Some(Health::Ready) => text.push_str("<span class=\"ready\">ready</span>"),
        Some(Health::Progressing(m)) => {
            let _ = write!(
                text,
                "<span class=\"progressing\">progressing: {}</span>",
                escape(m)
            );
        }
        Some(Health::Failed(m)) => {
            let _ = write!(text, "<span class=\"failed\">failed: {}</span>", escape(m));
        }
        None if text.is_empty() => text.push('-'),
        None => {}
    }
    text
}

fn image_html(out: &mut String, image: &ImageView) {
    let _ = write!(
        out,
        "<div class=\"image\" title=\"{}\">{}: <code>{}</code>",
        escape(&image.image),
        escape(&image.container),
        escape(&image.tag)
    );
    if let Some(digest) = &image.digest {
        let _ = write!(out, " <code class=\"digest\">@{}</code>", escape(digest));
    }
    if let Some(source) = &image.source {
        let _ = write!(
            out,
            " <span class=\"source\" title=\"{}\">from {}</span>",
            escape(&source.subject),
            escape(&source.short)
        );
    }
    out.push_str("</div>");
}

fn metadata(out: &mut String, env: &str, o: &ObjectView) {
    if o.labels.is_empty() && o.annotations.is_empty() {
        out.push('-');
        return;
    }
    let _ = write!(
        out,
        "<details data-id=\"meta/{}/{}/{}/{}\"><summary>{} labels, {} annotations</summary><dl>",
        escape(env),
        escape(&o.kind),
        escape(&o.namespace),
        escape(&o.name),
        o.labels.len(),
        o.annotations.len()
    );
    for (class, map) in [("label", &o.labels), ("annotation", &o.annotations)] {
        for (k, v) in map {
            let _ = write!(
                out,
                "<dt class=\"{class}\">{}</dt><dd class=\"{class}\">{}</dd>",
                escape(k),
                escape(v)
            );
        }
    }
    out.push_str("</dl></details>");
}

fn endpoints(out: &mut String, env: &EnvState) {
    if env.endpoints.is_empty() {
        return;
    }
    out.push_str(
        "<h3>endpoints</h3><table class=\"endpoints\"><thead><tr><th>service</th><th>type</th>\
         <th>ports</th><th>addresses</th></tr></thead><tbody>",
    );
    for e in &env.endpoints {
        let _ = write!(
            out,
            "<tr><td>{}/{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&e.namespace),
            escape(&e.service),
            escape(&e.kind),
            escape(&e.ports.join(", ")),
            escape(&e.addresses.join(", "))
        );
    }
    out.push_str("</tbody></table>");
}

/// `2026-12-04 17:54 UTC` from Unix seconds.
pub fn utc(seconds: i64) -> String {
    let t = crate::image::git_info::Utc::from_unix(seconds);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02} UTC",
        t.year, t.month, t.day, t.hour, t.minute
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_in_values_is_text() {
        assert_eq!(
            escape("<script>alert(\"x\")</script>&'"),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;"
        );
        let env = EnvState {
            name: "e".into(),
            banner: Some(Banner {
                kind: "error",
                message: "<img src=x>".into(),
            }),
            objects: vec![ObjectView {
                kind: "ConfigMap".into(),
                namespace: "micro".into(),
                name: "c".into(),
                state: "in sync",
                health: None,
                replicas: None,
                images: Vec::new(),
                diff: Some("+ <b>".into()),
                labels: Default::default(),
                annotations: [("note".to_string(), "<script>x</script>".to_string())].into(),
            }],
            ..Default::default()
        };
        let html = main(&Snapshot {
            environments: vec![env],
        });
        assert!(
            !html.contains("<script>") && !html.contains("<img") && !html.contains("<b>"),
            "{html}"
        );
        assert!(html.contains("&lt;script&gt;x&lt;/script&gt;"), "{html}");
    }

    #[test]
    fn times_are_utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00 UTC");
        assert_eq!(utc(1_796_406_847), "2026-12-04 17:54 UTC");
    }

    #[test]
    fn states_become_class_names() {
        assert_eq!(slug("in sync"), "in-sync");
        assert_eq!(
            slug("extra (not in inventory, kept)"),
            "extra-not-in-inventory-kept"
        );
    }
}
