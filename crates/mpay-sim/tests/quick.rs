#[test]
fn few_seeds() {
    let s = mpay_sim::run_seeds(0, 300, 2);
    for f in s.failures.iter().take(3) {
        eprintln!("seed {} violations {:?}", f.seed, f.violations);
    }
    eprintln!(
        "seeds={} transfers={} committed={} aborted={} crashes={} sent={} dropped={}",
        s.seeds, s.transfers, s.committed, s.aborted, s.crashes, s.frames_sent, s.frames_dropped
    );
    assert_eq!(s.violations(), 0);
}
