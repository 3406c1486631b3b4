//! Charts drawn on the server, shared by every page that shows one: inline SVG, no
//! script needed.

use std::fmt::Write;

use chrono::NaiveDate;

/// An inline SVG line chart: counts as bars, the threshold as a dashed line, alarm
/// days marked.
pub(crate) fn chart_svg(
    days: &[NaiveDate],
    counts: &[f64],
    threshold: &[Option<f64>],
    alarms: &[bool],
    label_threshold: &str,
) -> String {
    let (w, h, left, bottom, top) = (760.0, 220.0, 36.0, 24.0, 10.0);
    let n = counts.len().max(1);
    let max = counts
        .iter()
        .copied()
        .chain(
            threshold
                .iter()
                .flatten()
                .copied()
                .filter(|v| v.is_finite()),
        )
        .fold(1.0f64, f64::max)
        * 1.1;
    let x = |i: usize| left + (w - left - 8.0) * (i as f64 + 0.5) / n as f64;
    let y = |v: f64| top + (h - top - bottom) * (1.0 - v / max);
    let bar = ((w - left - 8.0) / n as f64 * 0.8).max(1.0);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="chart" viewBox="0 0 {w} {h}" role="img" xmlns="http://www.w3.org/2000/svg">"#
    );
    for k in 0..=4 {
        let v = max * k as f64 / 4.0;
        let _ = write!(
            s,
            r##"<line x1="{left}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#e3e7ee"/><text x="{}" y="{:.1}" class="ax">{}</text>"##,
            w - 8.0,
            left - 4.0,
            y(v) + 4.0,
            if max < 8.0 {
                format!("{v:.1}")
            } else {
                format!("{v:.0}")
            },
            y = y(v)
        );
    }
    for (i, c) in counts.iter().enumerate() {
        let cls = if alarms.get(i).copied().unwrap_or(false) {
            "al"
        } else {
            "ct"
        };
        let _ = write!(
            s,
            r#"<rect class="{cls}" x="{:.1}" y="{:.1}" width="{bar:.1}" height="{:.1}"/>"#,
            x(i) - bar / 2.0,
            y(*c),
            (y(0.0) - y(*c)).max(0.0)
        );
    }
    let mut path = String::new();
    let mut pen = false;
    for (i, t) in threshold.iter().enumerate() {
        match t.filter(|v| v.is_finite()) {
            Some(v) => {
                let _ = write!(
                    path,
                    "{}{:.1},{:.1} ",
                    if pen { "L" } else { "M" },
                    x(i),
                    y(v.min(max))
                );
                pen = true;
            }
            None => pen = false,
        }
    }
    if !path.is_empty() {
        let _ = write!(s, r#"<path class="th" d="{path}"/>"#);
    }
    let ticks = [0, n / 2, n - 1];
    for i in ticks {
        if let Some(d) = days.get(i) {
            let _ = write!(
                s,
                r#"<text x="{:.1}" y="{}" class="ax mid">{d}</text>"#,
                x(i),
                h - 6.0
            );
        }
    }
    let _ = write!(
        s,
        r#"<text x="{}" y="{}" class="ax th-label">— — {label_threshold}</text></svg>"#,
        w - 170.0,
        top + 12.0
    );
    s
}

/// A round axis end at or above `x`: 1, 2 or 5 times a power of ten, or 100 for a
/// percentage just over 100.
pub(crate) fn nice_ceiling(x: f64) -> f64 {
    let p = 10f64.powf(x.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * p)
        .find(|v| *v >= x)
        .unwrap_or(10.0 * p)
}

/// JSON for a `<script>` block: no `</` can close it early.
pub(crate) fn script_json(v: &serde_json::Value) -> String {
    v.to_string().replace("</", "<\\/")
}
