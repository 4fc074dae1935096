//! `sp-bench-chart`: draws the table of `scripts/bench-vs.sh` as an SVG bar chart.
//!
//! ```text
//! sp-bench-chart <results.csv> <out.svg> [title]
//! ```
//!
//! The input is the CSV file that `scripts/bench-vs.sh` writes: one header line, then one
//! line per case:
//!
//! ```text
//! group,case,unit,better,sp-rs,raw,NNG,nanomsg,libzmq
//! throughput,tcp 64 B,msg/s,higher,1942929,17498072,302480,,—
//! ```
//!
//! Every column after `better` is one library (a bar colour). A cell is a positive number or
//! missing: empty, `—`, `-`, `nan`, `hung`, `n/a` or anything else that is not a positive
//! number (the chart has a log scale). Lines that are empty or start with `#` are skipped;
//! fields hold no commas. The chart has one panel per `group` (in the order the groups first
//! appear), one cluster of bars per case, one bar per library, a log-scale y axis labelled
//! with the group's `unit`, and a legend.

use std::fmt;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// A parse or drawing error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChartError(pub String);

impl fmt::Display for ChartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ChartError {}

fn draw_err<E: fmt::Display>(e: E) -> ChartError {
    ChartError(format!("drawing failed: {e}"))
}

/// Which direction is better for a row's numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Better {
    /// Throughput and bandwidth.
    Higher,
    /// Latency and memory.
    Lower,
}

/// One library's result for one case.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    /// A measured median.
    Value(f64),
    /// Nothing to draw; the text says why (`—`, `hung`, ...; empty for an empty cell).
    Missing(String),
}

impl Cell {
    fn parse(text: &str) -> Cell {
        let text = text.trim();
        match text.parse::<f64>() {
            Ok(v) if v.is_finite() && v > 0.0 => Cell::Value(v),
            _ => Cell::Missing(text.to_string()),
        }
    }

    /// The value, if there is one.
    pub fn value(&self) -> Option<f64> {
        match *self {
            Cell::Value(v) => Some(v),
            Cell::Missing(_) => None,
        }
    }
}

/// One case (one cluster of bars).
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// The panel it belongs to, e.g. `throughput`.
    pub group: String,
    /// The cluster's label, e.g. `tcp 64 B`.
    pub case: String,
    /// The y-axis unit, e.g. `msg/s`.
    pub unit: String,
    /// Whether higher or lower numbers are better.
    pub better: Better,
    /// One cell per library, in the header's order.
    pub cells: Vec<Cell>,
}

/// A parsed results file.
#[derive(Clone, Debug, PartialEq)]
pub struct Table {
    /// The library columns, in order.
    pub libraries: Vec<String>,
    /// The cases, in order.
    pub rows: Vec<Row>,
}

const FIXED: [&str; 4] = ["group", "case", "unit", "better"];

/// Parses the CSV file `scripts/bench-vs.sh` writes.
///
/// # Errors
/// A missing or wrong header, a row with another number of fields than the header, a `better`
/// other than `higher`/`lower`, or no rows at all.
pub fn parse_csv(text: &str) -> Result<Table, ChartError> {
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim_end_matches('\r')))
        .filter(|(_, l)| !l.trim().is_empty() && !l.starts_with('#'));
    let (_, header) = lines
        .next()
        .ok_or_else(|| ChartError("empty results file".into()))?;
    let header: Vec<&str> = header.split(',').map(str::trim).collect();
    if header.len() <= FIXED.len() || header[..FIXED.len()] != FIXED {
        return Err(ChartError(format!(
            "header must be `{},<library>...`, found `{}`",
            FIXED.join(","),
            header.join(",")
        )));
    }
    let libraries: Vec<String> = header[FIXED.len()..]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut rows = Vec::new();
    for (line_no, line) in lines {
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        if fields.len() != header.len() {
            return Err(ChartError(format!(
                "line {line_no}: {} fields, the header has {}",
                fields.len(),
                header.len()
            )));
        }
        let better = match fields[3] {
            "higher" => Better::Higher,
            "lower" => Better::Lower,
            other => {
                return Err(ChartError(format!(
                    "line {line_no}: `better` must be higher or lower, found `{other}`"
                )))
            }
        };
        rows.push(Row {
            group: fields[0].to_string(),
            case: fields[1].to_string(),
            unit: fields[2].to_string(),
            better,
            cells: fields[FIXED.len()..]
                .iter()
                .map(|f| Cell::parse(f))
                .collect(),
        });
    }
    if rows.is_empty() {
        return Err(ChartError("no rows after the header".into()));
    }
    Ok(Table { libraries, rows })
}

impl Table {
    /// The rows grouped by `group`, groups in order of first appearance.
    pub fn panels(&self) -> Vec<Vec<&Row>> {
        let mut panels: Vec<Vec<&Row>> = Vec::new();
        for row in &self.rows {
            match panels.iter_mut().find(|p| p[0].group == row.group) {
                Some(p) => p.push(row),
                None => panels.push(vec![row]),
            }
        }
        panels
    }
}

/// A short number for a bar or axis label: `1.94M`, `302k`, `36.9`, `1.64`.
pub fn short_number(v: f64) -> String {
    let (scaled, suffix) = if v >= 1e9 {
        (v / 1e9, "G")
    } else if v >= 1e6 {
        (v / 1e6, "M")
    } else if v >= 1e3 {
        (v / 1e3, "k")
    } else {
        (v, "")
    };
    let digits = if scaled >= 100.0 {
        0
    } else if scaled >= 10.0 {
        1
    } else {
        2
    };
    format!("{scaled:.digits$}{suffix}")
}

/// [`short_number`] without trailing zeros, for the decades on the axis: `1M`, `10k`, `0.1`.
pub fn axis_number(v: f64) -> String {
    let s = short_number(v);
    let digits_end = s.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(s.len());
    let (digits, suffix) = s.split_at(digits_end);
    if digits.contains('.') {
        let digits = digits.trim_end_matches('0').trim_end_matches('.');
        format!("{digits}{suffix}")
    } else {
        s
    }
}

/// sp-rs, raw, NNG, nanomsg, libzmq, then more.
const COLOURS: [RGBColor; 8] = [
    RGBColor(230, 120, 20),
    RGBColor(140, 140, 140),
    RGBColor(40, 100, 190),
    RGBColor(60, 160, 80),
    RGBColor(200, 50, 50),
    RGBColor(140, 90, 180),
    RGBColor(120, 80, 40),
    RGBColor(20, 160, 170),
];

const WIDTH: u32 = 1100;
const PANEL_HEIGHT: u32 = 420;
const TITLE_HEIGHT: u32 = 75;

/// Draws `table` as an SVG document.
///
/// # Errors
/// A drawing error from plotters.
pub fn render_svg(table: &Table, title: &str) -> Result<String, ChartError> {
    let panels = table.panels();
    let height = TITLE_HEIGHT + PANEL_HEIGHT * panels.len() as u32;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_err)?;
        let (top, body) = root.split_vertically(TITLE_HEIGHT);
        top.draw(&Text::new(
            title.to_string(),
            (WIDTH as i32 / 2, 22),
            ("sans-serif", 22)
                .into_font()
                .color(&BLACK)
                .pos(Pos::new(HPos::Center, VPos::Center)),
        ))
        .map_err(draw_err)?;
        draw_legend(&top, &table.libraries)?;
        let areas = body.split_evenly((panels.len(), 1));
        for (area, rows) in areas.iter().zip(&panels) {
            draw_panel(&root, area, rows, &table.libraries)?;
        }
        root.present().map_err(draw_err)?;
    }
    Ok(svg)
}

/// One swatch and name per library, in a centred row under the title.
fn draw_legend(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    libraries: &[String],
) -> Result<(), ChartError> {
    const ENTRY: i32 = 110;
    let y = 55;
    let mut x = WIDTH as i32 / 2 - ENTRY * libraries.len() as i32 / 2;
    let font = ("sans-serif", 14)
        .into_font()
        .color(&BLACK)
        .pos(Pos::new(HPos::Left, VPos::Center));
    for (j, library) in libraries.iter().enumerate() {
        let colour = COLOURS[j % COLOURS.len()];
        area.draw(&Rectangle::new(
            [(x, y - 7), (x + 14, y + 7)],
            colour.filled(),
        ))
        .map_err(draw_err)?;
        area.draw(&Text::new(library.clone(), (x + 20, y), font.clone()))
            .map_err(draw_err)?;
        x += ENTRY;
    }
    Ok(())
}

fn draw_panel(
    root: &DrawingArea<SVGBackend<'_>, Shift>,
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    rows: &[&Row],
    libraries: &[String],
) -> Result<(), ChartError> {
    let first = rows[0];
    let values: Vec<f64> = rows
        .iter()
        .flat_map(|r| r.cells.iter().filter_map(Cell::value))
        .collect();
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(0.0, f64::max);
    // Whole decades, with room above the tallest bar for its label.
    let (y_lo, y_hi) = if values.is_empty() {
        (1.0, 10.0)
    } else {
        // A decade under the shortest bar, so that it does not sit on the axis.
        let y_lo = 10f64.powf((lo / 2.0).log10().floor());
        let y_hi = 10f64.powf((hi * 2.0).log10().ceil());
        (y_lo, y_hi.max(y_lo * 10.0))
    };
    let better = match first.better {
        Better::Higher => "higher",
        Better::Lower => "lower",
    };
    let n = rows.len();
    let mut chart = ChartBuilder::on(area)
        .caption(
            format!("{} ({}, {better} is better)", first.group, first.unit),
            ("sans-serif", 18),
        )
        .margin(12)
        .margin_right(20)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..n as f64, (y_lo..y_hi).log_scale())
        .map_err(draw_err)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(0)
        .x_label_formatter(&|_| String::new())
        .y_desc(first.unit.as_str())
        .y_label_formatter(&|v| axis_number(*v))
        .draw()
        .map_err(draw_err)?;

    let slots = libraries.len().max(1) as f64;
    let bar = 0.8 / slots;
    let label_font = ("sans-serif", 11).into_font().color(&BLACK);
    let missing_font = ("sans-serif", 11)
        .into_font()
        .color(&RGBColor(120, 120, 120));
    for j in 0..libraries.len() {
        let colour = COLOURS[j % COLOURS.len()];
        let x0 = |i: usize| i as f64 + 0.1 + j as f64 * bar;
        let bars = rows.iter().enumerate().filter_map(|(i, r)| {
            let v = r.cells.get(j)?.value()?;
            Some(Rectangle::new(
                [(x0(i) + bar * 0.05, y_lo), (x0(i) + bar * 0.95, v)],
                colour.filled(),
            ))
        });
        chart.draw_series(bars).map_err(draw_err)?;
        for (i, r) in rows.iter().enumerate() {
            let centre = x0(i) + bar / 2.0;
            let (text, y, font) = match r.cells.get(j) {
                Some(Cell::Value(v)) => (short_number(*v), *v, &label_font),
                Some(Cell::Missing(why)) if !why.is_empty() && why != "n/a" => {
                    (why.clone(), y_lo, &missing_font)
                }
                _ => ("—".to_string(), y_lo, &missing_font),
            };
            let (px, py) = chart.backend_coord(&(centre, y));
            root.draw(&Text::new(
                text,
                (px, py - 3),
                font.pos(Pos::new(HPos::Center, VPos::Bottom)),
            ))
            .map_err(draw_err)?;
        }
    }
    // Case names under their clusters.
    let case_font = ("sans-serif", 14)
        .into_font()
        .color(&BLACK)
        .pos(Pos::new(HPos::Center, VPos::Top));
    for (i, r) in rows.iter().enumerate() {
        let (px, py) = chart.backend_coord(&(i as f64 + 0.5, y_lo));
        root.draw(&Text::new(r.case.clone(), (px, py + 8), case_font.clone()))
            .map_err(draw_err)?;
    }
    Ok(())
}

/// The binary's entry point: returns the exit status.
pub fn main() -> i32 {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 2 || args.len() > 3 || args[0].starts_with('-') {
        eprintln!("usage: sp-bench-chart <results.csv> <out.svg> [title]");
        return 2;
    }
    let title = args
        .get(2)
        .map_or("sp-rs against NNG, nanomsg and libzmq", String::as_str);
    let run = || -> Result<(), ChartError> {
        let text = std::fs::read_to_string(&args[0])
            .map_err(|e| ChartError(format!("{}: {e}", args[0])))?;
        let table = parse_csv(&text)?;
        let svg = render_svg(&table, title)?;
        std::fs::write(&args[1], svg).map_err(|e| ChartError(format!("{}: {e}", args[1])))
    };
    match run() {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("sp-bench-chart: {e}");
            2
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
# written by scripts/bench-vs.sh
group,case,unit,better,sp-rs,raw,NNG,nanomsg,libzmq
throughput,tcp 64 B,msg/s,higher,1942929,17498072,302480,,—

throughput,ipc 64 B,msg/s,higher,2077403,—,220848,nan,hung\r
latency,tcp 64 B,us,lower,36.920,33.962,69.725,55.5,0
";

    #[test]
    fn parses_header_rows_and_missing_cells() {
        let t = parse_csv(SAMPLE).unwrap();
        assert_eq!(t.libraries, ["sp-rs", "raw", "NNG", "nanomsg", "libzmq"]);
        assert_eq!(t.rows.len(), 3);
        let r = &t.rows[0];
        assert_eq!(
            (r.group.as_str(), r.case.as_str(), r.unit.as_str()),
            ("throughput", "tcp 64 B", "msg/s")
        );
        assert_eq!(r.better, Better::Higher);
        assert_eq!(r.cells[0], Cell::Value(1942929.0));
        assert_eq!(r.cells[3], Cell::Missing(String::new()));
        assert_eq!(r.cells[4], Cell::Missing("—".into()));
        let r = &t.rows[1];
        assert_eq!(r.cells[1], Cell::Missing("—".into()));
        assert_eq!(r.cells[3], Cell::Missing("nan".into()));
        assert_eq!(
            r.cells[4],
            Cell::Missing("hung".into()),
            "trailing CR is stripped"
        );
        let r = &t.rows[2];
        assert_eq!(r.better, Better::Lower);
        assert_eq!(r.cells[0].value(), Some(36.92));
        assert_eq!(
            r.cells[4],
            Cell::Missing("0".into()),
            "not drawable on a log scale"
        );
    }

    #[test]
    fn groups_in_order_of_first_appearance() {
        let t = parse_csv(SAMPLE).unwrap();
        let panels = t.panels();
        assert_eq!(panels.len(), 2);
        assert_eq!(panels[0].len(), 2);
        assert_eq!(panels[1][0].group, "latency");
    }

    #[test]
    fn rejects_malformed_files() {
        assert!(parse_csv("").is_err());
        assert!(parse_csv("# only a comment\n").is_err());
        assert!(
            parse_csv("case,unit,sp-rs\nx,y,1\n").is_err(),
            "wrong header"
        );
        assert!(
            parse_csv("group,case,unit,better\n").is_err(),
            "no library column"
        );
        assert!(
            parse_csv("group,case,unit,better,sp-rs\n").is_err(),
            "no rows"
        );
        let e = parse_csv("group,case,unit,better,a,b\nthr,x,msg/s,higher,1\n").unwrap_err();
        assert!(e.0.contains("line 2"), "{e}");
        assert!(parse_csv("group,case,unit,better,a\nthr,x,msg/s,more,1\n").is_err());
    }

    #[test]
    fn short_numbers() {
        assert_eq!(short_number(1_942_929.0), "1.94M");
        assert_eq!(short_number(302_480.0), "302k");
        assert_eq!(short_number(36.92), "36.9");
        assert_eq!(short_number(1.642), "1.64");
        assert_eq!(short_number(17_498_072.0), "17.5M");
        assert_eq!(short_number(2.5e9), "2.50G");
        assert_eq!(axis_number(1e6), "1M");
        assert_eq!(axis_number(1e4), "10k");
        assert_eq!(axis_number(100.0), "100");
        assert_eq!(axis_number(0.1), "0.1");
        assert_eq!(axis_number(1.0), "1");
    }

    #[test]
    fn renders_every_case_and_library() {
        let t = parse_csv(SAMPLE).unwrap();
        let svg = render_svg(&t, "test chart").unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..40.min(svg.len())]);
        for needle in [
            "test chart",
            "tcp 64 B",
            "ipc 64 B",
            "sp-rs",
            "libzmq",
            "hung",
            "1.94M",
        ] {
            assert!(svg.contains(needle), "missing {needle}");
        }
        assert!(svg.contains("<rect"));
    }
}
