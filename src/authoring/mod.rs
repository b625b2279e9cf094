//! Authoring help: the starter experiments `faultline init` writes.
//!
//! Each template is a commented YAML file under `templates/`, embedded in
//! the binary. Every one targets the embedded demo system and is short
//! (8 s of load at most), so `faultline init && faultline run experiment.yaml`
//! works out of the box; a test runs each of them.

pub mod schema_link;

/// A starter experiment.
#[derive(Debug)]
pub struct Template {
    /// The `--template` name.
    pub name: &'static str,
    /// One line on what it shows.
    pub summary: &'static str,
    /// The YAML text written to the file.
    pub text: &'static str,
}

/// Every template, the default (`latency`) first.
pub const TEMPLATES: &[Template] = &[
    Template {
        name: "latency",
        summary: "a latency toxic on the payments hop",
        text: include_str!("templates/latency.yaml"),
    },
    Template {
        name: "errors",
        summary: "payments answers 503 to a share of calls",
        text: include_str!("templates/errors.yaml"),
    },
    Template {
        name: "outage",
        summary: "payments is down; checkout fails fast and recovers",
        text: include_str!("templates/outage.yaml"),
    },
    Template {
        name: "cpu",
        summary: "CPU pressure on one core",
        text: include_str!("templates/cpu.yaml"),
    },
    Template {
        name: "memory",
        summary: "memory pressure (64 MiB held)",
        text: include_str!("templates/memory.yaml"),
    },
    Template {
        name: "breaker",
        summary: "a circuit breaker opens, shields payments and closes",
        text: include_str!("templates/breaker.yaml"),
    },
    Template {
        name: "canary",
        summary: "a failing canary is rolled back",
        text: include_str!("templates/canary.yaml"),
    },
    Template {
        name: "recovery",
        summary: "back to baseline soon after a blackhole",
        text: include_str!("templates/recovery.yaml"),
    },
];

/// The template called `name`.
pub fn template(name: &str) -> Option<&'static Template> {
    TEMPLATES.iter().find(|t| t.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_validates_and_is_named_after_itself() {
        for t in TEMPLATES {
            let path = std::path::PathBuf::from(format!("experiments/{}.yaml", t.name));
            let doc = crate::config::load_str(t.text, &path)
                .unwrap_or_else(|e| panic!("template `{}` is invalid:\n{e}", t.name));
            let experiment = &doc.experiments[0];
            assert!(
                experiment.total_duration() <= std::time::Duration::from_secs(8),
                "template `{}` runs longer than 8 s",
                t.name
            );
            assert!(
                t.text.starts_with("# yaml-language-server: $schema="),
                "template `{}` lacks the schema line",
                t.name
            );
        }
    }

    #[test]
    fn unknown_names_find_no_template() {
        assert!(template("latency").is_some());
        assert!(template("latenc").is_none());
    }
}
