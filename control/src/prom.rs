//! Writing Prometheus text: the `# HELP` / `# TYPE` head of a series and unlabelled values.

use std::fmt::{Display, Write as _};

/// The `# HELP` and `# TYPE` lines of series `name` (`kind`: `counter`, `gauge`, ...).
pub fn head(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// Unlabelled series, each `(name, kind, help, value)`: head and value line.
pub fn singles<V: Display>(out: &mut String, series: &[(&str, &str, &str, V)]) {
    for (name, kind, help, value) in series {
        head(out, name, help, kind);
        let _ = writeln!(out, "{name} {value}");
    }
}
