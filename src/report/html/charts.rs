//! Time-series charts of one experiment, drawn by plotters as inline SVG.
//!
//! Every chart of an experiment shares one [`Timeline`]: the phases as
//! alternating background bands with their names, and fault apply/remove
//! actions as vertical lines. A chart is one [`Metric`] (an id, a unit and
//! one or more lines), so charting another per-second series, such as CPU
//! or memory, is one more `Metric::new(..).line(..)` call in `view.rs`.
//!
//! User strings (phase names, fault kinds) reach the SVG only as text
//! content, which plotters' SVG backend escapes; [`check_text_is_escaped`]
//! verifies that on every chart, so a plotters upgrade that stopped escaping
//! would fail loudly instead of injecting markup into the page.

use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::ops::Range;

/// Size of one chart in SVG pixels; the page scales it to its width.
const WIDTH: u32 = 1100;
const HEIGHT: u32 = 220;
/// Pixels taken by the y labels and the margins: what is left is the plot.
const Y_LABEL_AREA: u32 = 64;
const X_LABEL_AREA: u32 = 40;
const MARGIN: u32 = 12;
const FONT: &str = "sans-serif";
/// Plotters' size: the SVG `font-size` is this / 1.24.
const LABEL_SIZE: f64 = 15.0;
/// Rough width of one character of the band labels, for truncation; the SVG
/// has no font metrics, so this errs on the wide side.
const CHAR_PX: f64 = 7.0;

/// Phase bands: two alternating greys; phases with faults get a warm tint.
const BAND_EVEN: RGBColor = RGBColor(0xe8, 0xec, 0xf2);
const BAND_ODD: RGBColor = RGBColor(0xf6, 0xf8, 0xfb);
const BAND_FAULT_EVEN: RGBColor = RGBColor(0xfb, 0xe3, 0xdc);
const BAND_FAULT_ODD: RGBColor = RGBColor(0xfd, 0xf0, 0xeb);
const BAND_TEXT: RGBColor = RGBColor(0x44, 0x4c, 0x5a);
/// Fault markers: applied (solid purple, apart from the red error line)
/// and removed (dashed green).
pub const APPLY_COLOR: RGBColor = RGBColor(0x7e, 0x3f, 0xb8);
pub const REMOVE_COLOR: RGBColor = RGBColor(0x2e, 0x7d, 0x32);
const AXIS_TEXT: RGBColor = RGBColor(0x33, 0x33, 0x33);
const GRID: RGBColor = RGBColor(0xd0, 0xd5, 0xdd);

/// A line colour, also shown as a swatch in the HTML legend.
#[derive(Debug, Clone, Copy)]
pub struct LineColor(pub RGBColor);

impl LineColor {
    /// `#rrggbb`, for the legend's CSS.
    pub fn css(self) -> String {
        let RGBColor(r, g, b) = self.0;
        format!("#{r:02x}{g:02x}{b:02x}")
    }
}

pub const P50: LineColor = LineColor(RGBColor(0x1f, 0x77, 0xb4));
pub const P99: LineColor = LineColor(RGBColor(0xe6, 0x7e, 0x22));
pub const THROUGHPUT: LineColor = LineColor(RGBColor(0x2b, 0x8a, 0x8a));
pub const ERRORS: LineColor = LineColor(RGBColor(0xd6, 0x27, 0x28));

/// A phase as a span of the x axis (seconds since the load started).
#[derive(Debug, Clone)]
pub struct Band {
    pub name: String,
    pub start: f64,
    pub end: f64,
    /// The phase injected faults: tinted differently.
    pub faulted: bool,
}

/// A fault action as a vertical line.
#[derive(Debug, Clone)]
pub struct Marker {
    pub at: f64,
    pub apply: bool,
    /// Short label drawn next to the line (the fault's kind).
    pub label: String,
    /// The action failed: drawn with a `failed` suffix.
    pub ok: bool,
}

/// What every chart of one experiment shares.
#[derive(Debug, Clone, Default)]
pub struct Timeline {
    pub bands: Vec<Band>,
    pub markers: Vec<Marker>,
    /// Right end of the x axis, in seconds.
    pub end: f64,
}

/// One line of a chart: `None` values are gaps, not zeros.
#[derive(Debug, Clone)]
pub struct Line {
    pub label: &'static str,
    pub color: LineColor,
    /// `(x seconds, value)`.
    pub points: Vec<(f64, Option<f64>)>,
}

/// One chart: a metric over time.
#[derive(Debug, Clone)]
pub struct Metric {
    /// The `data-chart` id: `latency`, `throughput`, `error_rate`, ...
    pub id: &'static str,
    pub title: &'static str,
    /// The y-axis description, e.g. `ms`.
    pub unit: &'static str,
    /// Upper bound of the y axis whatever the data (100 for percentages).
    pub cap: Option<f64>,
    pub lines: Vec<Line>,
}

impl Metric {
    pub fn new(id: &'static str, title: &'static str, unit: &'static str) -> Metric {
        Metric {
            id,
            title,
            unit,
            cap: None,
            lines: Vec::new(),
        }
    }

    /// Caps the y axis (a percentage never goes past 100).
    pub fn capped(mut self, cap: f64) -> Metric {
        self.cap = Some(cap);
        self
    }

    /// Adds a line whose value at each window is `value(window)`.
    pub fn line<W>(
        mut self,
        label: &'static str,
        color: LineColor,
        windows: &[(f64, W)],
        value: impl Fn(&W) -> Option<f64>,
    ) -> Metric {
        let points = windows
            .iter()
            .map(|(x, w)| (*x, value(w).filter(|v| v.is_finite())))
            .collect();
        self.lines.push(Line {
            label,
            color,
            points,
        });
        self
    }

    fn max_value(&self) -> Option<f64> {
        self.lines
            .iter()
            .flat_map(|l| l.points.iter().filter_map(|p| p.1))
            .reduce(f64::max)
    }
}

/// Why a chart could not be drawn.
#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    #[error("plotters: {0}")]
    Draw(String),
    /// A text element of the SVG contains markup: never inserted in the page.
    #[error("the SVG has unescaped markup in a text element near byte {at}")]
    Unescaped { at: usize },
}

fn draw_err<E: std::fmt::Debug>(e: E) -> ChartError {
    ChartError::Draw(format!("{e:?}"))
}

/// Draws `metric` over `timeline` and returns the `<svg>` element.
pub fn render(metric: &Metric, timeline: &Timeline) -> Result<String, ChartError> {
    let x_end = if timeline.end.is_finite() && timeline.end > 0.0 {
        timeline.end
    } else {
        1.0
    };
    let y_end = y_axis_end(metric.max_value(), metric.cap);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_err)?;
        let mut chart = ChartBuilder::on(&root)
            .margin(MARGIN)
            .x_label_area_size(X_LABEL_AREA)
            .y_label_area_size(Y_LABEL_AREA)
            .build_cartesian_2d(0f64..x_end, 0f64..y_end)
            .map_err(draw_err)?;

        // Bands first so the grid and the data are drawn over them.
        draw_bands(&mut chart, timeline, x_end, y_end)?;
        let axis_font = (FONT, LABEL_SIZE).into_font().color(&AXIS_TEXT);
        let y_fmt = |v: &f64| format_tick(*v, y_end);
        let x_fmt = |v: &f64| {
            if v.fract().abs() < 1e-9 {
                format!("{v:.0}s")
            } else {
                format!("{v:.1}s")
            }
        };
        chart
            .configure_mesh()
            .disable_x_mesh()
            .light_line_style(TRANSPARENT)
            .bold_line_style(GRID.stroke_width(1))
            .axis_style(AXIS_TEXT.stroke_width(1))
            // Whole seconds when they fit: a 2 s run gets 0s, 1s, 2s.
            .x_labels((x_end.ceil() as usize + 1).clamp(2, 13))
            .y_labels(5)
            .x_label_formatter(&x_fmt)
            .y_label_formatter(&y_fmt)
            .label_style(axis_font.clone())
            .axis_desc_style(axis_font)
            .x_desc("seconds since load start")
            .y_desc(metric.unit)
            .draw()
            .map_err(draw_err)?;

        let mut any_value = false;
        for line in &metric.lines {
            any_value |= draw_line(&mut chart, line)?;
        }
        draw_markers(&mut chart, timeline, y_end)?;
        if !any_value {
            let style = (FONT, LABEL_SIZE + 2.0)
                .into_font()
                .color(&AXIS_TEXT)
                .pos(Pos::new(HPos::Center, VPos::Center));
            chart
                .draw_series(std::iter::once(Text::new(
                    "no samples",
                    (x_end / 2.0, y_end / 2.0),
                    style,
                )))
                .map_err(draw_err)?;
        }
        root.present().map_err(draw_err)?;
    }
    check_text_is_escaped(&svg)?;
    Ok(svg)
}

type Chart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

fn draw_bands(
    chart: &mut Chart<'_, '_>,
    timeline: &Timeline,
    x_end: f64,
    y_end: f64,
) -> Result<(), ChartError> {
    let plot_px = f64::from(WIDTH - Y_LABEL_AREA - 2 * MARGIN);
    let label = (FONT, LABEL_SIZE)
        .into_font()
        .color(&BAND_TEXT)
        .pos(Pos::new(HPos::Left, VPos::Top));
    for (i, band) in timeline.bands.iter().enumerate() {
        let x = clamp_range(band.start..band.end, x_end);
        if x.end <= x.start {
            continue;
        }
        let fill = match (band.faulted, i % 2 == 0) {
            (false, true) => BAND_EVEN,
            (false, false) => BAND_ODD,
            (true, true) => BAND_FAULT_EVEN,
            (true, false) => BAND_FAULT_ODD,
        };
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(x.start, 0.0), (x.end, y_end)],
                fill.filled(),
            )))
            .map_err(draw_err)?;
        let band_px = (x.end - x.start) / x_end * plot_px;
        if let Some(text) = fit_label(&band.name, band_px - 8.0) {
            chart
                .draw_series(std::iter::once(
                    EmptyElement::at((x.start, y_end)) + Text::new(text, (4, 4), label.clone()),
                ))
                .map_err(draw_err)?;
        }
    }
    Ok(())
}

/// Draws the line in segments between gaps; a lone point becomes a dot.
/// Returns whether it had any value at all.
fn draw_line(chart: &mut Chart<'_, '_>, line: &Line) -> Result<bool, ChartError> {
    let style = line.color.0.stroke_width(2);
    let mut any = false;
    for segment in line.points.split(|p| p.1.is_none()) {
        let points: Vec<(f64, f64)> = segment.iter().filter_map(|&(x, v)| Some((x, v?))).collect();
        match points.len() {
            0 => continue,
            1 => {
                chart
                    .draw_series(std::iter::once(Circle::new(points[0], 3, style.filled())))
                    .map_err(draw_err)?;
            }
            _ => {
                chart
                    .draw_series(LineSeries::new(points, style))
                    .map_err(draw_err)?;
            }
        }
        any = true;
    }
    Ok(any)
}

fn draw_markers(
    chart: &mut Chart<'_, '_>,
    timeline: &Timeline,
    y_end: f64,
) -> Result<(), ChartError> {
    // Labels of markers at (almost) the same time are stacked upwards.
    let mut stacked: Vec<(f64, bool)> = Vec::new();
    for marker in &timeline.markers {
        if !marker.at.is_finite() || marker.at < 0.0 {
            continue;
        }
        let (color, h) = if marker.apply {
            (APPLY_COLOR, HPos::Left)
        } else {
            (REMOVE_COLOR, HPos::Right)
        };
        let ends = [(marker.at, 0.0), (marker.at, y_end)];
        if marker.apply {
            chart
                .draw_series(LineSeries::new(ends, color.stroke_width(2)))
                .map_err(draw_err)?;
        } else {
            chart
                .draw_series(DashedLineSeries::new(ends, 6, 4, color.stroke_width(2)))
                .map_err(draw_err)?;
        }
        let level = stacked
            .iter()
            .filter(|(at, apply)| *apply == marker.apply && (at - marker.at).abs() < 0.5)
            .count() as i32;
        stacked.push((marker.at, marker.apply));
        let sign = if marker.apply { '+' } else { '\u{2212}' };
        let suffix = if marker.ok { "" } else { " failed" };
        let text = format!("{sign}{}{suffix}", truncate(&marker.label, 24));
        // Under the row of phase names, beside the line.
        let dx = if marker.apply { 4 } else { -4 };
        let style = (FONT, LABEL_SIZE - 1.0)
            .into_font()
            .color(&color)
            .pos(Pos::new(h, VPos::Top));
        chart
            .draw_series(std::iter::once(
                EmptyElement::at((marker.at, y_end))
                    + Text::new(text, (dx, 22 + 15 * level), style),
            ))
            .map_err(draw_err)?;
    }
    Ok(())
}

fn clamp_range(r: Range<f64>, end: f64) -> Range<f64> {
    let clamp = |v: f64| {
        if v.is_finite() {
            v.clamp(0.0, end)
        } else {
            0.0
        }
    };
    clamp(r.start)..clamp(r.end)
}

/// A round upper bound for the y axis with some headroom.
fn y_axis_end(max: Option<f64>, cap: Option<f64>) -> f64 {
    let max = max.filter(|m| *m > 0.0).unwrap_or(0.0);
    let raw = (max * 1.08).max(1.0);
    let magnitude = 10f64.powf(raw.log10().floor());
    let nice = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|v| *v >= raw)
        .unwrap_or(raw);
    match cap {
        Some(cap) => nice.min(cap),
        None => nice,
    }
}

/// As many decimals as the tick step (about a fifth of the axis) needs.
fn format_tick(v: f64, y_end: f64) -> String {
    let step = y_end / 5.0;
    if step >= 1.0 {
        format!("{v:.0}")
    } else if step >= 0.1 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// The label if it fits `px`, shortened with `…` if it does not, or nothing
/// when not even a few characters fit.
fn fit_label(name: &str, px: f64) -> Option<String> {
    let fits = (px / CHAR_PX).floor();
    if fits < 3.0 {
        return None;
    }
    Some(truncate(name, fits as usize))
}

/// At most `max` characters (not bytes), ending in `…` when cut.
fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Fails unless every `<text>` element holds only escaped text: the first
/// `<` after its start tag must begin its own end tag.
pub fn check_text_is_escaped(svg: &str) -> Result<(), ChartError> {
    let mut rest = svg;
    let mut offset = 0;
    while let Some(start) = rest.find("<text") {
        let after = &rest[start..];
        let open_end = after
            .find('>')
            .ok_or(ChartError::Unescaped { at: offset + start })?;
        let content = &after[open_end + 1..];
        let next_tag = content
            .find('<')
            .ok_or(ChartError::Unescaped { at: offset + start })?;
        if !content[next_tag..].starts_with("</text>") {
            return Err(ChartError::Unescaped { at: offset + start });
        }
        let consumed = start + open_end + 1 + next_tag + "</text>".len();
        offset += consumed;
        rest = &rest[consumed..];
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Plotters writes text content on its own line.
    fn has_text(svg: &str, text: &str) -> bool {
        svg.contains(&format!(">\n{text}\n</text>"))
    }

    /// Polylines in the p99 colour (axes and ticks are polylines too).
    fn data_lines(svg: &str) -> usize {
        svg.lines()
            .filter(|l| l.starts_with("<polyline") && l.contains("stroke=\"#E67E22\""))
            .count()
    }

    fn timeline(names: &[&str]) -> Timeline {
        Timeline {
            bands: names
                .iter()
                .enumerate()
                .map(|(i, n)| Band {
                    name: n.to_string(),
                    start: i as f64 * 2.0,
                    end: i as f64 * 2.0 + 2.0,
                    faulted: i == 1,
                })
                .collect(),
            markers: vec![
                Marker {
                    at: 2.0,
                    apply: true,
                    label: "latency".into(),
                    ok: true,
                },
                Marker {
                    at: 4.0,
                    apply: false,
                    label: "latency".into(),
                    ok: true,
                },
            ],
            end: names.len() as f64 * 2.0,
        }
    }

    fn latency(values: &[Option<f64>]) -> Metric {
        let windows: Vec<(f64, Option<f64>)> = values
            .iter()
            .enumerate()
            .map(|(i, v)| (i as f64 + 0.5, *v))
            .collect();
        Metric::new("latency", "Latency", "ms").line("p99", P99, &windows, |v| *v)
    }

    #[test]
    fn text_is_written_as_svg_text_elements_without_font_files() {
        let svg = render(
            &latency(&[Some(3.0), Some(5.0)]),
            &timeline(&["warm", "fault"]),
        )
        .expect("chart");
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(has_text(&svg, "warm"), "band label as text: {svg}");
        assert!(has_text(&svg, "+latency"), "fault label as text");
        assert!(has_text(&svg, "seconds since load start"));
        assert_eq!(data_lines(&svg), 1, "the data line");
    }

    #[test]
    fn hostile_phase_names_are_escaped_inside_the_svg() {
        let hostile = "<script>alert(1)</script>&\"'";
        let svg = render(&latency(&[Some(1.0)]), &timeline(&[hostile])).expect("chart");
        assert!(!svg.contains("<script"), "{svg}");
        assert!(svg.contains("&lt;script&gt;alert(1)&lt;/script&gt;&amp;&quot;&apos;"));
        check_text_is_escaped(&svg).expect("escaped");
    }

    #[test]
    fn markup_inside_a_text_element_is_refused() {
        let svg = "<svg><text x=\"1\">a</text><text>b<script>x</script></text></svg>";
        assert!(matches!(
            check_text_is_escaped(svg),
            Err(ChartError::Unescaped { .. })
        ));
        check_text_is_escaped("<svg><text>a &lt;b&gt;</text></svg>").expect("escaped text");
    }

    #[test]
    fn a_metric_without_values_says_no_samples() {
        let mut t = timeline(&["a"]);
        t.markers.clear();
        let svg = render(&latency(&[None, None, None]), &t).expect("chart");
        assert!(has_text(&svg, "no samples"));
        assert_eq!(data_lines(&svg), 0);
    }

    #[test]
    fn gaps_split_the_line_and_lone_points_are_dots() {
        let mut t = timeline(&["a", "b", "c", "d"]);
        t.markers.clear();
        let svg = render(
            &latency(&[
                Some(1.0),
                Some(2.0),
                None,
                Some(3.0),
                None,
                Some(4.0),
                Some(5.0),
            ]),
            &t,
        )
        .expect("chart");
        assert_eq!(data_lines(&svg), 2, "{svg}");
        assert_eq!(svg.matches("<circle").count(), 1, "{svg}");
    }

    #[test]
    fn long_band_names_are_shortened_to_fit() {
        let long = "x".repeat(500);
        let svg = render(&latency(&[Some(1.0)]), &timeline(&[&long, "b"])).expect("chart");
        assert!(!svg.contains(&long));
        assert!(svg.contains("x…\n</text>"));
        assert_eq!(truncate("ééé", 2), "é…");
        assert_eq!(fit_label("abc", 10.0), None);
    }

    #[test]
    fn y_axis_ends_on_a_round_number_above_the_data() {
        assert_eq!(y_axis_end(None, None), 1.0);
        assert_eq!(y_axis_end(Some(0.0), None), 1.0);
        assert_eq!(y_axis_end(Some(87.0), None), 100.0);
        assert_eq!(y_axis_end(Some(130.0), None), 200.0);
        assert_eq!(y_axis_end(Some(0.3), None), 1.0);
        assert_eq!(y_axis_end(Some(95.0), Some(100.0)), 100.0);
        assert_eq!(y_axis_end(Some(3.0), None), 5.0);
    }

    #[test]
    fn a_zero_length_timeline_still_draws() {
        let t = Timeline::default();
        let svg = render(&latency(&[]), &t).expect("chart");
        assert!(has_text(&svg, "no samples"));
    }
}
