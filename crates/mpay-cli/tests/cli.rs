//! The `mpay` binary as a user runs it: a real process, its output and exit
//! code.

use std::process::Command;

fn mpay(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_mpay"))
        .args(args)
        .output()
        .expect("mpay runs");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

fn last_line(text: &str) -> &str {
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
}

#[test]
fn sim_offline_reports_in_the_documented_last_line() {
    let (code, out) = mpay(&["sim", "offline", "--seeds", "200", "--first-seed", "500"]);
    assert_eq!(code, 0, "{out}");
    let last = last_line(&out);
    let fields: Vec<&str> = last.split_whitespace().collect();
    assert_eq!(fields.len(), 3, "{last}");
    assert_eq!(fields[0], "seeds=200");
    assert!(fields[1].starts_with("transfers="));
    let transfers: u64 = fields[1]["transfers=".len()..].parse().unwrap();
    assert!(transfers > 200, "{last}");
    assert_eq!(fields[2], "violations=0");
    // One seed in four had a dishonest peer (seeds 503, 507, …).
    assert!(out.contains("dishonest_runs=50 "), "{out}");
}

#[test]
fn sim_semops_reports_in_the_documented_last_line_and_a_failure_replays() {
    let (code, out) = mpay(&["sim", "semops", "--seeds", "300", "--first-seed", "100"]);
    assert_eq!(code, 0, "{out}");
    let last = last_line(&out);
    let fields: Vec<&str> = last.split_whitespace().collect();
    assert_eq!(fields.len(), 3, "{last}");
    assert_eq!(fields[0], "seeds=300");
    let payments: u64 = fields[1]
        .strip_prefix("payments=")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("{last}"));
    assert!(payments > 300 * 10, "{last}");
    assert_eq!(fields[2], "violations=0");

    // A broken variant fails, and prints the command that replays a seed.
    let (code, out) = mpay(&[
        "sim",
        "semops",
        "--seeds",
        "1",
        "--first-seed",
        "24234",
        "--variant",
        "refusal-forgotten",
    ]);
    assert_eq!(code, 1, "{out}");
    let replay =
        "mpay sim semops --first-seed 24234 --seeds 1 --variant refusal-forgotten --verbose";
    assert!(out.contains(replay), "{out}");
    let (code, again) = mpay(&replay.split_whitespace().skip(1).collect::<Vec<_>>());
    assert_eq!(code, 1, "{again}");
    let trace = |text: &str| {
        text.lines()
            .find(|l| l.starts_with("seed=24234 "))
            .and_then(|l| l.split(" trace=").nth(1))
            .map(str::to_owned)
    };
    let (first, second) = (
        trace(&again),
        trace(&mpay(&replay.split_whitespace().skip(1).collect::<Vec<_>>()).1),
    );
    assert!(first.is_some() && first == second, "{again}");
    assert!(last_line(&out).ends_with("violations=2"), "{out}");
}

#[test]
fn bench_envelope_ends_with_a_ratio() {
    let (code, out) = mpay(&["bench", "envelope", "--rounds", "1", "--iterations", "20"]);
    assert_eq!(code, 0, "{out}");
    let last = last_line(&out);
    let ratio: f64 = last.rsplit("ratio=").next().unwrap().parse().unwrap();
    // A figure is reported, not asserted: how fast the envelope is against
    // its primitives depends on the machine and its load (docs/benchmarks.md
    // records it). The test checks the line's shape only.
    assert!(ratio.is_finite() && ratio > 0.0, "{last}");
}

#[test]
fn bench_offline_ends_with_a_ratio() {
    let (code, out) = mpay(&["bench", "offline", "--rounds", "1", "--transfers", "5"]);
    assert_eq!(code, 0, "{out}");
    assert!(last_line(&out).contains(" ratio="), "{out}");
}

#[test]
fn unknown_commands_fail_with_help() {
    let (code, out) = mpay(&["nonsense"]);
    assert_ne!(code, 0);
    assert!(out.contains("Usage"), "{out}");
}

/// The PIN key lines of a CPP's key file (comments skipped).
fn pin_key_lines(path: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .expect("the PIN key file")
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

#[test]
fn a_provisioned_cpp_has_a_pin_key_file_of_its_own_and_rotation_keeps_the_old_key_second() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("temp dir");
    let net = dir.path().to_str().expect("utf-8 path");
    let (code, out) = mpay(&["network", "init", "--dir", net]);
    assert_eq!(code, 0, "{out}");
    let keys = dir.path().join("cpp1.pin-keys");
    let mode = std::fs::metadata(&keys)
        .expect("cpp1.pin-keys")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let config = std::fs::read_to_string(dir.path().join("cpp1.toml")).expect("cpp1.toml");
    assert!(
        config.contains("pin_keys = ") && !config.contains("pin_cost"),
        "{config}"
    );
    let before = pin_key_lines(&keys);
    assert_eq!(before.len(), 1);
    assert!(
        !dir.path().join("mpp1.pin-keys").exists(),
        "only CPPs check PINs"
    );

    let (code, out) = mpay(&["cpp", "rotate-pin-key", "--network", net, "--cpp", "cpp1"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("restart cpp1"), "{out}");
    let after = pin_key_lines(&keys);
    assert_eq!(after.len(), 2);
    assert_ne!(after[0], before[0], "a new current key");
    assert_eq!(after[1], before[0], "the replaced key is kept, second");
    let mode = std::fs::metadata(&keys)
        .expect("cpp1.pin-keys")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

/// The merchant's help speaks of merchants, MPPs and the merchant's exit
/// codes; the customer's of customers and CPPs; an operator's command says
/// which file it reads (issue 16).
#[test]
fn help_speaks_to_whom_the_command_is_for() {
    for args in [
        ["merchant", "enroll", "--help"],
        ["merchant", "status", "--help"],
    ] {
        let (code, out) = mpay(&args);
        assert_eq!(code, 0, "{args:?}: {out}");
        let lower = out.to_lowercase();
        // The merchant may hear that the customer's bank declined; not of
        // the customer's own file, account, PIN or lockout.
        for customer_word in [
            "customer's file",
            "cust:",
            "the cpp to enrol",
            "wrong pin",
            "locked",
            "t or dt confirmation",
        ] {
            assert!(
                !lower.contains(customer_word),
                "{args:?} speaks of {customer_word:?}:\n{out}"
            );
        }
    }
    let (_, enroll) = mpay(&["merchant", "enroll", "--help"]);
    assert!(enroll.contains("The MPP to enrol with"), "{enroll}");
    let (_, status) = mpay(&["merchant", "status", "--help"]);
    assert!(
        status.contains("Exit codes: 0 completed (or refunded)"),
        "{status}"
    );
    let (_, pay) = mpay(&["customer", "pay", "--help"]);
    assert!(pay.contains("3 wrong PIN"), "{pay}");
    let (_, unlock) = mpay(&["customer", "unlock", "--help"]);
    assert!(unlock.contains("operators.toml"), "{unlock}");
}
