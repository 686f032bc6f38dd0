//! `--plot FILE.svg`: `info` latency over time, naive and seedbank side by side, one row per
//! workload. SVG only, so no font or system libraries are needed (text is left to the viewer).

use std::path::Path;

use plotters::prelude::*;

use super::engines::EngineKind;
use super::readers::TimelinePoint;
use super::report::BenchReport;
use super::summary::EngineReport;

const PANEL: (u32, u32) = (640, 340);
/// Floor of the log-scale y axis, ms (1 µs).
const FLOOR_MS: f64 = 0.001;

/// Writes the plot; workloads without both a naive and a seedbank run are left out.
///
/// # Errors
/// Nothing to plot, or the file cannot be written.
pub fn write_svg(report: &BenchReport, path: &Path) -> anyhow::Result<()> {
    let rows: Vec<(&str, &EngineReport, &EngineReport)> = report
        .workloads
        .iter()
        .filter_map(|w| {
            Some((
                w.workload.name(),
                w.engine(EngineKind::Naive)?,
                w.engine(EngineKind::Seedbank)?,
            ))
        })
        .collect();
    anyhow::ensure!(
        !rows.is_empty(),
        "--plot needs a workload run with both naive and seedbank"
    );
    let size = (PANEL.0 * 2, PANEL.1 * rows.len() as u32 + 40);
    let root = SVGBackend::new(path, size).into_drawing_area();
    root.fill(&WHITE).map_err(plot_error)?;
    let title = format!(
        "info latency, shaded during the storm (p50 blue, p99 red, max pink) — {} · {} CPUs · SQLite {}",
        report.machine.date, report.machine.cpus, report.machine.sqlite
    );
    let root = root
        .titled(&title, ("sans-serif", 18))
        .map_err(plot_error)?;
    let panels = root.split_evenly((rows.len(), 2));
    for (i, (workload, naive, seedbank)) in rows.iter().enumerate() {
        let y_max = [naive, seedbank]
            .iter()
            .flat_map(|e| e.median.timeline.iter())
            .map(|p| p.max_us as f64 / 1000.0)
            .fold(1.0, f64::max)
            * 2.0;
        for (j, e) in [naive, seedbank].into_iter().enumerate() {
            draw_panel(&panels[i * 2 + j], workload, e, y_max)?;
        }
    }
    root.present().map_err(plot_error)?;
    Ok(())
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    workload: &str,
    e: &EngineReport,
    y_max: f64,
) -> anyhow::Result<()> {
    let m = &e.median;
    let x_max = m
        .timeline
        .last()
        .map_or(1.0, |p| p.t_ms / 1000.0)
        .max(m.storm_end_ms / 1000.0)
        .max(0.1);
    let caption = format!(
        "{workload}: {} — storm {:.1} s, info p99 {:.2} ms",
        e.engine.name(),
        m.seconds,
        m.info_storm_us.p99 as f64 / 1000.0
    );
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 15))
        .margin(8)
        .x_label_area_size(30)
        .y_label_area_size(55)
        .build_cartesian_2d(0f64..x_max, (FLOOR_MS..y_max).log_scale())
        .map_err(plot_error)?;
    // The storm, shaded: from its first to its last put.
    let (start, end) = (m.storm_start_ms / 1000.0, m.storm_end_ms / 1000.0);
    chart
        .draw_series(std::iter::once(Rectangle::new(
            [(start, FLOOR_MS), (end, y_max)],
            RGBColor(255, 236, 200).filled(),
        )))
        .map_err(plot_error)?;
    chart
        .configure_mesh()
        .x_desc("seconds since start")
        .y_desc("ms")
        .draw()
        .map_err(plot_error)?;
    let line = |f: fn(&TimelinePoint) -> u64| {
        m.timeline
            .iter()
            .filter(|p| p.count > 0)
            .map(move |p| (p.t_ms / 1000.0, (f(p) as f64 / 1000.0).max(FLOOR_MS)))
    };
    let pink = RGBColor(240, 150, 170);
    chart
        .draw_series(LineSeries::new(line(|p| p.max_us), &pink))
        .map_err(plot_error)?;
    chart
        .draw_series(LineSeries::new(line(|p| p.p99_us), &RED))
        .map_err(plot_error)?;
    chart
        .draw_series(LineSeries::new(line(|p| p.p50_us), &BLUE))
        .map_err(plot_error)?;
    Ok(())
}

fn plot_error(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("plot: {e}")
}
