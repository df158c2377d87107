//! Charts drawn on the server as inline SVG: pure functions from data to markup.
//!
//! Values are integers (calls, milliseconds, nano-USD) so that axis ticks are exact and
//! money on an axis is formatted from integer nano-USD; floats only place pixels. Every
//! chart is an `<svg role="img">` with a `<title>` and a `<desc>`, followed by the same
//! numbers as a table (in a `<details>`), so nothing is only visible on hover. Points
//! carry `data-tip` (and an SVG `<title>`) for tooltips. A chart with points is one stop
//! of the Tab key (`tabindex="0"` on the `<svg>`, never on a point); `app.js` lets the
//! arrow keys, Home and End step through its points inside it.

use crate::format;
use std::fmt::Write;

/// What the values of a chart count, for its labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    /// Whole numbers: calls, tokens.
    Count,
    /// Nano-USD, labelled as dollars.
    Money,
    /// Milliseconds.
    Millis,
}

impl Scale {
    /// The smallest top of an axis, so that an all-zero chart still has a sensible scale
    /// (one call, one cent, ten milliseconds).
    pub fn floor(self) -> i64 {
        match self {
            Scale::Count => 1,
            Scale::Money => 10_000_000,
            Scale::Millis => 10,
        }
    }

    /// `v` as a label.
    pub fn label(self, v: i64) -> String {
        match self {
            Scale::Count => format::count(v),
            Scale::Money => format::money_nanos(v),
            Scale::Millis => format::millis(Some(v as f64)),
        }
    }
}

/// One line of a line chart.
#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    pub values: Vec<i64>,
}

/// A line (or area) chart over labelled points.
#[derive(Debug, Clone)]
pub struct LineChart {
    /// Unique on the page; prefixes the SVG's element ids.
    pub id: String,
    pub title: String,
    /// One label per point, oldest first.
    pub x_labels: Vec<String>,
    pub series: Vec<Series>,
    pub scale: Scale,
    /// Fill the area under each line.
    pub area: bool,
}

/// One bar.
#[derive(Debug, Clone)]
pub struct Bar {
    pub label: String,
    pub value: i64,
}

/// A bar chart.
#[derive(Debug, Clone)]
pub struct BarChart {
    pub id: String,
    pub title: String,
    pub bars: Vec<Bar>,
    pub scale: Scale,
}

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 240.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 28.0;
const BOTTOM: f64 = 32.0;
/// At most this many labels on the x axis.
const MAX_X_LABELS: usize = 8;

/// Text for HTML and SVG: `&`, `<`, `>`, `"` and `'` escaped.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// An id made of `a-z0-9-` from `raw`.
fn ident(raw: &str) -> String {
    raw.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' }).collect()
}

/// The axis ticks for data whose largest value is `max`: 0, step, … up to the first tick
/// at or above `max`, with `step` 1, 2 or 5 × 10ⁿ, four or five steps. For `Millis` and
/// `Count` at least 1; for `Money` at least one nano-USD.
pub fn ticks(max: i64) -> Vec<i64> {
    let max = max.max(1);
    let raw = (max + 3) / 4;
    let mut magnitude: i64 = 1;
    while magnitude <= raw / 10 {
        magnitude = magnitude.saturating_mul(10);
    }
    let step = [1, 2, 5, 10]
        .iter()
        .map(|m| magnitude.saturating_mul(*m))
        .find(|s| *s >= raw)
        .unwrap_or(magnitude.saturating_mul(10));
    let mut out = vec![0];
    let mut t = 0i64;
    while t < max {
        t = t.saturating_add(step);
        out.push(t);
    }
    out
}

/// The y pixel of `v` on an axis topped by `top`.
fn y_of(v: i64, top: i64) -> f64 {
    let plot = HEIGHT - TOP - BOTTOM;
    TOP + plot - plot * (v as f64 / top.max(1) as f64)
}

/// The x pixel of point `i` of `n`, spread across the plot (one point sits in the middle).
fn x_of(i: usize, n: usize) -> f64 {
    let plot = WIDTH - LEFT - RIGHT;
    if n <= 1 { LEFT + plot / 2.0 } else { LEFT + plot * i as f64 / (n - 1) as f64 }
}

/// Which of `n` x labels are drawn: every k-th so at most [`MAX_X_LABELS`] are.
fn labelled(i: usize, n: usize) -> bool {
    let every = n.div_ceil(MAX_X_LABELS).max(1);
    i.is_multiple_of(every)
}

/// The opening of a chart's SVG with its title and description; `focusable` for a chart
/// with points to step through.
fn open(out: &mut String, id: &str, title: &str, desc: &str, focusable: bool) {
    let tabindex = if focusable { " tabindex=\"0\"" } else { "" };
    let _ = write!(
        out,
        "<svg class=\"chart\" id=\"{id}\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\"{tabindex} \
         aria-labelledby=\"{id}-title {id}-desc\" preserveAspectRatio=\"xMidYMid meet\">\
         <title id=\"{id}-title\">{}</title><desc id=\"{id}-desc\">{}</desc>",
        esc(title),
        esc(desc)
    );
}

/// Horizontal grid lines and y labels for `ticks`.
fn y_axis(out: &mut String, ticks: &[i64], scale: Scale) {
    let top = ticks.last().copied().unwrap_or(1);
    for t in ticks {
        let y = y_of(*t, top);
        let _ = write!(
            out,
            "<line class=\"grid\" x1=\"{LEFT}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\"/>\
             <text class=\"tick\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            WIDTH - RIGHT,
            LEFT - 6.0,
            y + 4.0,
            esc(&scale.label(*t))
        );
    }
}

/// The chart shown when there is nothing to draw.
fn empty(id: &str, title: &str, message: &str) -> String {
    let mut out = String::new();
    open(&mut out, id, title, message, false);
    let _ = write!(
        out,
        "<rect class=\"empty-box\" x=\"{LEFT}\" y=\"{TOP}\" width=\"{:.1}\" height=\"{:.1}\" rx=\"8\"/>\
         <text class=\"empty-text\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text></svg>",
        WIDTH - LEFT - RIGHT,
        HEIGHT - TOP - BOTTOM,
        WIDTH / 2.0,
        HEIGHT / 2.0,
        esc(message)
    );
    out
}

/// The numbers of a chart as a table, in a `<details>`.
fn table(caption: &str, head: &[String], rows: &[Vec<String>]) -> String {
    let mut out = format!("<details class=\"chart-data\"><summary>Data: {}</summary><table><thead><tr>", esc(caption));
    for h in head {
        let _ = write!(out, "<th scope=\"col\">{}</th>", esc(h));
    }
    out.push_str("</tr></thead><tbody>");
    for row in rows {
        out.push_str("<tr>");
        for (i, cell) in row.iter().enumerate() {
            if i == 0 {
                let _ = write!(out, "<th scope=\"row\">{}</th>", esc(cell));
            } else {
                let _ = write!(out, "<td>{}</td>", esc(cell));
            }
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table></details>");
    out
}

/// A small trend line with no axes, for a stat card; `label` says what it shows.
pub fn sparkline(values: &[i64], label: &str) -> String {
    const W: f64 = 120.0;
    const H: f64 = 32.0;
    let max = values.iter().copied().max().unwrap_or(0).max(1);
    let n = values.len();
    let points: Vec<String> = values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let x = if n <= 1 { W / 2.0 } else { W * i as f64 / (n - 1) as f64 };
            let y = H - 2.0 - (H - 4.0) * (*v.max(&0) as f64 / max as f64);
            format!("{x:.1},{y:.1}")
        })
        .collect();
    let mut out = format!(
        "<svg class=\"sparkline\" viewBox=\"0 0 {W} {H}\" width=\"{W}\" height=\"{H}\" role=\"img\" aria-label=\"{}\">\
         <title>{}</title>",
        esc(label),
        esc(label)
    );
    if points.is_empty() {
        let _ = write!(
            out,
            "<line class=\"spark-empty\" x1=\"0\" y1=\"{:.1}\" x2=\"{W}\" y2=\"{:.1}\"/>",
            H - 2.0,
            H - 2.0
        );
    } else {
        let _ = write!(out, "<polyline class=\"spark\" points=\"{}\"/>", points.join(" "));
    }
    out.push_str("</svg>");
    out
}

/// A line chart with a y axis (labelled ticks), x labels and a legend; an empty state
/// when there are no points.
pub fn line_chart(c: &LineChart) -> String {
    let id = ident(&c.id);
    let n = c.x_labels.len();
    if n == 0 || c.series.iter().all(|s| s.values.is_empty()) {
        return empty(&id, &c.title, "No data for this range yet");
    }
    let max = c.series.iter().flat_map(|s| s.values.iter().copied()).max().unwrap_or(0);
    let ticks = ticks(max.max(c.scale.floor()));
    let top = ticks.last().copied().unwrap_or(1);
    let names: Vec<&str> = c.series.iter().map(|s| s.name.as_str()).collect();
    let desc = format!(
        "{} over {} points from {} to {}; highest {}.",
        names.join(" and "),
        n,
        c.x_labels.first().map(String::as_str).unwrap_or(""),
        c.x_labels.last().map(String::as_str).unwrap_or(""),
        c.scale.label(max)
    );
    let mut out = String::new();
    open(&mut out, &id, &c.title, &desc, true);
    y_axis(&mut out, &ticks, c.scale);
    for (i, label) in c.x_labels.iter().enumerate() {
        if labelled(i, n) {
            let _ = write!(
                out,
                "<text class=\"tick\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
                x_of(i, n),
                HEIGHT - BOTTOM + 18.0,
                esc(label)
            );
        }
    }
    for (s_index, s) in c.series.iter().enumerate() {
        let points: Vec<(f64, f64)> =
            s.values.iter().take(n).enumerate().map(|(i, v)| (x_of(i, n), y_of((*v).max(0), top))).collect();
        let path: Vec<String> = points.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
        if c.area && !points.is_empty() {
            let base = y_of(0, top);
            let first = points.first().map(|p| p.0).unwrap_or(LEFT);
            let last = points.last().map(|p| p.0).unwrap_or(LEFT);
            let _ = write!(
                out,
                "<polygon class=\"area s{s_index}\" points=\"{first:.1},{base:.1} {} {last:.1},{base:.1}\"/>",
                path.join(" ")
            );
        }
        let _ = write!(out, "<polyline class=\"line s{s_index}\" points=\"{}\"/>", path.join(" "));
        for (i, (x, y)) in points.iter().enumerate() {
            let tip = format!("{} · {}: {}", c.x_labels[i], s.name, c.scale.label(s.values[i]));
            let _ = write!(
                out,
                "<circle class=\"pt s{s_index}\" cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"3\" data-tip=\"{}\"><title>{}</title></circle>",
                esc(&tip),
                esc(&tip)
            );
        }
    }
    for (s_index, s) in c.series.iter().enumerate() {
        let x = LEFT + s_index as f64 * 140.0;
        let _ = write!(
            out,
            "<g class=\"legend\"><rect class=\"swatch s{s_index}\" x=\"{x:.1}\" y=\"6\" width=\"12\" height=\"12\" rx=\"2\"/>\
             <text x=\"{:.1}\" y=\"16\">{}</text></g>",
            x + 18.0,
            esc(&s.name)
        );
    }
    out.push_str("</svg>");
    let mut head = vec!["Time".to_string()];
    head.extend(c.series.iter().map(|s| s.name.clone()));
    let rows: Vec<Vec<String>> = c
        .x_labels
        .iter()
        .enumerate()
        .map(|(i, label)| {
            let mut row = vec![label.clone()];
            row.extend(c.series.iter().map(|s| s.values.get(i).map(|v| c.scale.label(*v)).unwrap_or_default()));
            row
        })
        .collect();
    out.push_str(&table(&c.title, &head, &rows));
    out
}

/// A bar chart with a y axis and a label under each bar (thinned when there are many);
/// an empty state when there are no bars.
pub fn bar_chart(c: &BarChart) -> String {
    let id = ident(&c.id);
    let n = c.bars.len();
    if n == 0 {
        return empty(&id, &c.title, "No data for this range yet");
    }
    let max = c.bars.iter().map(|b| b.value).max().unwrap_or(0);
    let ticks = ticks(max.max(c.scale.floor()));
    let top = ticks.last().copied().unwrap_or(1);
    let desc = format!("{} bars; highest {}.", n, c.scale.label(max));
    let mut out = String::new();
    open(&mut out, &id, &c.title, &desc, true);
    y_axis(&mut out, &ticks, c.scale);
    let slot = (WIDTH - LEFT - RIGHT) / n as f64;
    let width = (slot * 0.7).max(1.0);
    let base = y_of(0, top);
    for (i, b) in c.bars.iter().enumerate() {
        let x = LEFT + slot * i as f64 + (slot - width) / 2.0;
        let y = y_of(b.value.max(0), top);
        let tip = format!("{}: {}", b.label, c.scale.label(b.value));
        let _ = write!(
            out,
            "<rect class=\"bar\" x=\"{x:.1}\" y=\"{y:.1}\" width=\"{width:.1}\" height=\"{:.1}\" data-tip=\"{}\"><title>{}</title></rect>",
            (base - y).max(0.0),
            esc(&tip),
            esc(&tip)
        );
        if labelled(i, n) {
            let _ = write!(
                out,
                "<text class=\"tick\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
                x + width / 2.0,
                HEIGHT - BOTTOM + 18.0,
                esc(&b.label)
            );
        }
    }
    out.push_str("</svg>");
    let rows: Vec<Vec<String>> = c.bars.iter().map(|b| vec![b.label.clone(), c.scale.label(b.value)]).collect();
    out.push_str(&table(&c.title, &["".into(), "Value".into()], &rows));
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// The numbers of attribute `name` in the first element that has it after `from`.
    fn attr(svg: &str, from: &str, name: &str) -> String {
        let at = svg.find(from).unwrap();
        let rest = &svg[at..];
        let start = rest.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
        rest[start..start + rest[start..].find('"').unwrap()].to_string()
    }

    #[test]
    fn ticks_are_round_and_cover_the_maximum() {
        assert_eq!(ticks(0), vec![0, 1]);
        assert_eq!(ticks(1), vec![0, 1]);
        assert_eq!(ticks(4), vec![0, 1, 2, 3, 4]);
        assert_eq!(ticks(7), vec![0, 2, 4, 6, 8]);
        assert_eq!(ticks(100), vec![0, 50, 100]);
        assert_eq!(ticks(130), vec![0, 50, 100, 150]);
        assert_eq!(ticks(1_234), vec![0, 500, 1000, 1500]);
        // $0.0123 in nano-USD: ticks at half a cent.
        assert_eq!(ticks(12_300_000), vec![0, 5_000_000, 10_000_000, 15_000_000]);
        assert_eq!(Scale::Money.label(5_000_000), "$0.005");
        for max in [3, 9, 11, 99, 101, 999_999, i64::MAX / 4] {
            let t = ticks(max);
            assert!(*t.last().unwrap() >= max && t.len() <= 6, "{max}: {t:?}");
        }
    }

    #[test]
    fn points_map_to_coordinates() {
        let chart = LineChart {
            id: "calls".into(),
            title: "Calls".into(),
            x_labels: vec!["a".into(), "b".into(), "c".into()],
            series: vec![Series { name: "Calls".into(), values: vec![0, 2, 4] }],
            scale: Scale::Count,
            area: false,
        };
        let svg = line_chart(&chart);
        // Ticks 0..4: 0 sits on the x axis (y = 240 - 32 = 208), 4 at the top (y = 28).
        let points = attr(&svg, "<polyline", "points");
        assert_eq!(points, "64.0,208.0 344.0,118.0 624.0,28.0");
        assert!(svg.contains("role=\"img\""));
        assert!(svg.contains("<title id=\"calls-title\">Calls</title>"));
        assert!(svg.contains("data-tip=\"b · Calls: 2\""));
        assert!(svg.contains("<th scope=\"row\">c</th><td>4</td>"), "a data table follows");
        assert_eq!(svg.matches("<circle").count(), 3);
        assert_eq!(svg.matches("tabindex").count(), 1, "the chart is one tab stop, its points none");
        assert!(
            svg.starts_with("<svg class=\"chart\" id=\"calls\" viewBox=\"0 0 640 240\" role=\"img\" tabindex=\"0\"")
        );
        assert!(svg.contains(">4</text>"), "the top tick is labelled");
    }

    #[test]
    fn areas_legends_and_escaping() {
        let chart = LineChart {
            id: "Spend & calls".into(),
            title: "Spend <by day>".into(),
            x_labels: vec!["03-01".into()],
            series: vec![
                Series { name: "Spend".into(), values: vec![1_500_000_000] },
                Series { name: "Refunds \"x\"".into(), values: vec![0] },
            ],
            scale: Scale::Money,
            area: true,
        };
        let svg = line_chart(&chart);
        assert!(svg.contains("id=\"spend---calls\""));
        assert!(svg.contains("Spend &lt;by day&gt;"));
        assert!(svg.contains("Refunds &quot;x&quot;"));
        assert_eq!(svg.matches("<polygon").count(), 2);
        assert_eq!(svg.matches("class=\"swatch").count(), 2, "one legend entry per series");
        assert!(svg.contains("$1.50"));
        let zero = LineChart { series: vec![Series { name: "Spend".into(), values: vec![0, 0] }], ..chart };
        let zero = line_chart(&LineChart { x_labels: vec!["a".into(), "b".into()], ..zero });
        assert!(
            zero.contains(">$0.01</text>") && zero.contains(">$0.005</text>"),
            "a zero chart's axis tops at a cent"
        );
        assert_eq!(attr(&svg, "<circle", "cx"), "344.0", "a single point sits in the middle");
    }

    #[test]
    fn empty_data_renders_an_empty_state() {
        let chart = LineChart {
            id: "x".into(),
            title: "Calls".into(),
            x_labels: vec![],
            series: vec![],
            scale: Scale::Count,
            area: false,
        };
        let svg = line_chart(&chart);
        assert!(svg.contains("No data for this range yet") && !svg.contains("<polyline"));
        let bars = bar_chart(&BarChart { id: "b".into(), title: "Cost".into(), bars: vec![], scale: Scale::Money });
        assert!(bars.contains("No data for this range yet") && bars.contains("role=\"img\""));
        assert!(!svg.contains("tabindex") && !bars.contains("tabindex"), "nothing to step through, no tab stop");
        let spark = sparkline(&[], "no calls");
        assert!(spark.contains("spark-empty") && spark.contains("aria-label=\"no calls\""));
    }

    #[test]
    fn bars_and_sparklines() {
        let chart = BarChart {
            id: "cost".into(),
            title: "Cost".into(),
            bars: vec![Bar { label: "Input".into(), value: 2 }, Bar { label: "Output".into(), value: 4 }],
            scale: Scale::Count,
        };
        let svg = bar_chart(&chart);
        // Two slots of 280 px; bars 196 px wide; 4 reaches the top (28), 2 halfway (118).
        assert_eq!(attr(&svg, "<rect class=\"bar\"", "x"), "106.0");
        assert_eq!(attr(&svg, "<rect class=\"bar\"", "y"), "118.0");
        assert_eq!(attr(&svg, "<rect class=\"bar\"", "height"), "90.0");
        assert!(svg.contains("data-tip=\"Output: 4\""));
        assert_eq!(svg.matches("tabindex=\"0\"").count(), 1, "one tab stop for every bar");
        let spark = sparkline(&[0, 5, 10], "calls");
        assert_eq!(attr(&spark, "<polyline", "points"), "0.0,30.0 60.0,16.0 120.0,2.0");
        let long: Vec<Bar> = (0..24).map(|i| Bar { label: format!("{i:02}"), value: i }).collect();
        let svg = bar_chart(&BarChart { id: "h".into(), title: "Hours".into(), bars: long, scale: Scale::Count });
        assert_eq!(svg.matches("<rect class=\"bar\"").count(), 24);
        assert!(svg.matches("class=\"tick\"").count() <= 8 + 6, "x labels are thinned");
    }
}
