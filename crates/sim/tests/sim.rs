//! The `seedbank sim` simulation: defaults, a liar in range, and its printed forms.

use seedbank_sim::{self as sim, Behavior, SimConfig, SimReport};

fn assert_sound(report: &SimReport, config: &SimConfig) {
    assert!(report.complete, "{report}");
    assert_eq!(report.callers_ok, report.callers);
    assert_eq!(report.runs, 1, "all callers shared one run");
    assert_eq!(report.client_haves_builds, 1);
    assert_eq!(report.verify_problems, 0);
    assert_eq!(report.lies.1, 0, "no corrupted blob stored");
    assert_eq!(report.report.duplicates, 0);
    assert!(report.report.peers_contacted <= config.discovery.fanout as u64);
    let contacted = report.peer_table.iter().filter(|p| p.messages > 0).count() as u64;
    assert_eq!(contacted, report.report.peers_contacted);
    let sent: u64 = report.peer_table.iter().map(|p| p.messages).sum();
    assert_eq!(sent, report.report.messages());
    assert!(
        report.peer_table.iter().all(|p| p.haves_builds <= 1),
        "one build per responder"
    );
    assert_eq!(
        report.report.blobs_fetched as usize,
        report.dag_blocks - report.client_had,
        "exactly what the client lacked"
    );
}

#[tokio::test(start_paused = true)]
async fn the_default_simulation_completes_in_one_run() {
    let config = SimConfig::default();
    let report = sim::run(config.clone()).await.unwrap();
    assert_sound(&report, &config);
    assert_eq!(report.peers, [39, 5, 5, 1]);
    assert_eq!(
        report.report.liars, 1,
        "the liar heads the list and is caught"
    );
    let text = report.to_string();
    assert!(text.contains("peers contacted") && text.contains("duplicates"));
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["report"]["complete"], true);
    assert_eq!(json["peer_table"].as_array().unwrap().len(), 50);
}

#[tokio::test(start_paused = true)]
async fn a_small_simulation_meets_its_liar_and_stores_none_of_its_bytes() {
    let config = SimConfig {
        peers: 10,
        seed: 7,
        branches: 6,
        leaves_per_branch: 8,
        shared_branches: 2,
        callers: 20,
        ..SimConfig::default()
    };
    let report = sim::run(config.clone()).await.unwrap();
    assert_sound(&report, &config);
    let liar = report
        .peer_table
        .iter()
        .find(|p| p.behavior == Behavior::Liar)
        .unwrap();
    assert_eq!(liar.id, "peer-00", "liars first");
    assert!(
        liar.blobs_sent > 0 && report.lies.0 > 0,
        "the liar was met: {report}"
    );
    assert_eq!(report.report.liars, 1);
}
