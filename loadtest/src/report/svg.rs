//! The report as an SVG, written by hand: per workload a latency CDF (log-scale
//! milliseconds, one line per target) and bars of requests per second.

use std::fmt::Write as _;

use super::{Report, WorkloadReport};

const COLORS: [&str; 7] = [
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#b07aa1", "#9c755f",
];
/// One color per target name, the same in every panel.
fn color(target: &str, index: usize) -> &'static str {
    match target {
        "direct" => COLORS[0],
        "rangecache-cold" => COLORS[1],
        "rangecache-warm" => COLORS[2],
        "nginx-cold" => COLORS[3],
        "nginx-warm" => COLORS[4],
        "rangecache-anon" => COLORS[5],
        "nginx-file" => COLORS[6],
        _ => COLORS[index % COLORS.len()],
    }
}

const PANEL_H: f64 = 340.0;
const WIDTH: f64 = 960.0;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn panel(out: &mut String, w: &WorkloadReport, y0: f64) {
    let (cx, cy, cw, ch) = (60.0, y0 + 48.0, 540.0, 240.0);
    let mut desc: String = w.description.chars().take(150).collect();
    if desc.len() < w.description.len() {
        desc.push('…');
    }
    let _ = writeln!(
        out,
        r##"<text x="20" y="{}" font-size="15" font-weight="bold">{}</text><text x="20" y="{}" font-size="11" fill="#444">{}; {} connections</text>"##,
        y0 + 16.0,
        esc(&w.workload),
        y0 + 32.0,
        esc(&desc),
        w.concurrency
    );
    // Latency range over all targets, in log10(ms).
    let pts = w.targets.iter().flat_map(|t| t.cdf.iter().map(|p| p[0]));
    let (mut lo, mut hi) = (f64::MAX, f64::MIN);
    for v in pts.filter(|v| *v > 0.0) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if lo > hi {
        (lo, hi) = (0.1, 100.0);
    }
    let (llo, lhi) = (
        lo.log10().floor(),
        hi.log10().ceil().max(lo.log10().floor() + 1.0),
    );
    let x = |ms: f64| cx + (ms.max(lo).log10() - llo) / (lhi - llo) * cw;
    let y = |q: f64| cy + ch - q * ch;
    let _ = writeln!(
        out,
        r##"<rect x="{cx}" y="{cy}" width="{cw}" height="{ch}" fill="none" stroke="#999"/>"##
    );
    let mut d = llo;
    while d <= lhi + 1e-9 {
        let xv = cx + (d - llo) / (lhi - llo) * cw;
        let label = 10f64.powf(d);
        let _ = writeln!(
            out,
            r##"<line x1="{xv:.1}" y1="{cy}" x2="{xv:.1}" y2="{}" stroke="#ddd"/><text x="{xv:.1}" y="{}" font-size="11" text-anchor="middle">{}</text>"##,
            cy + ch,
            cy + ch + 14.0,
            if label < 1.0 {
                format!("{label}")
            } else {
                format!("{label:.0}")
            }
        );
        d += 1.0;
    }
    for q in [0.0, 0.25, 0.5, 0.75, 0.9, 1.0] {
        let _ = writeln!(
            out,
            r##"<line x1="{cx}" y1="{:.1}" x2="{}" y2="{:.1}" stroke="#eee"/><text x="{}" y="{:.1}" font-size="11" text-anchor="end">{q}</text>"##,
            y(q),
            cx + cw,
            y(q),
            cx - 4.0,
            y(q) + 4.0
        );
    }
    let _ = writeln!(
        out,
        r#"<text x="{}" y="{}" font-size="12" text-anchor="middle">latency (ms, log scale) — fraction of requests at or below</text>"#,
        cx + cw / 2.0,
        cy + ch + 32.0
    );
    for (i, t) in w.targets.iter().enumerate() {
        let c = color(&t.target, i);
        let path: Vec<String> = t
            .cdf
            .iter()
            .map(|p| format!("{:.1},{:.1}", x(p[0]), y(p[1])))
            .collect();
        if !path.is_empty() {
            let _ = writeln!(
                out,
                r#"<polyline fill="none" stroke="{c}" stroke-width="2" points="{}"/>"#,
                path.join(" ")
            );
        }
        let ly = cy + 14.0 + i as f64 * 16.0;
        let _ = writeln!(
            out,
            r#"<rect x="{}" y="{}" width="10" height="10" fill="{c}"/><text x="{}" y="{}" font-size="12">{}</text>"#,
            cx + 8.0,
            ly - 9.0,
            cx + 22.0,
            ly,
            esc(&t.target)
        );
    }
    // Throughput bars.
    let (bx, bw) = (750.0, 190.0);
    let max = w
        .targets
        .iter()
        .map(|t| t.req_per_s)
        .fold(0.0, f64::max)
        .max(1e-9);
    let _ = writeln!(
        out,
        r#"<text x="{}" y="{}" font-size="12">requests per second</text>"#,
        bx - 100.0,
        cy + 6.0
    );
    let bar_h = (ch / w.targets.len().max(1) as f64).min(40.0) - 8.0;
    for (i, t) in w.targets.iter().enumerate() {
        let c = color(&t.target, i);
        let by = cy + 16.0 + i as f64 * (bar_h + 8.0);
        let len = t.req_per_s / max * (bw - 60.0);
        let _ = writeln!(
            out,
            r##"<text x="{:.1}" y="{:.1}" font-size="11" text-anchor="end">{}</text><rect x="{bx}" y="{by:.1}" width="{len:.1}" height="{bar_h:.1}" fill="{c}"/><text x="{:.1}" y="{:.1}" font-size="11">{:.0}</text>"##,
            bx - 6.0,
            by + bar_h / 2.0 + 4.0,
            esc(&t.target),
            bx + len + 4.0,
            by + bar_h / 2.0 + 4.0,
            t.req_per_s
        );
    }
}

/// The whole report as an SVG document.
pub fn render(r: &Report) -> String {
    let h = 80.0 + PANEL_H * r.workloads.len() as f64;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{h}" viewBox="0 0 {WIDTH} {h}" font-family="sans-serif">"#
    );
    let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        out,
        r#"<text x="20" y="22" font-size="13">rangecache-loadtest {} — {} cores, {}</text>"#,
        esc(&r.date),
        r.machine.cores,
        esc(&r.machine.cpu)
    );
    let _ = writeln!(
        out,
        r##"<text x="20" y="40" font-size="11" fill="#555">origin: {}</text><text x="20" y="56" font-size="11" fill="#555">{}</text>"##,
        esc(&r.origin),
        esc(&r.notes.join(" "))
    );
    for (i, w) in r.workloads.iter().enumerate() {
        panel(&mut out, w, 70.0 + PANEL_H * i as f64);
    }
    out.push_str("</svg>\n");
    out
}
