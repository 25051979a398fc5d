//! What the demo says while it runs: one progress bar per phase on stderr,
//! redrawn in place on a terminal, and narration lines on stdout. When
//! stderr is not a terminal the bar becomes one line at the start and one
//! at the end of each phase, so logs and CI output stay readable.

use std::io::{IsTerminal as _, Write as _};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Width of the bar itself, in cells.
const BAR_CELLS: usize = 28;
/// Pause between two redraws on a terminal.
const REDRAW_MS: u64 = 100;

struct State {
    phase: String,
    started: Instant,
}

/// Shared by the phases and the threads they start.
#[derive(Clone)]
pub struct Progress {
    inner: Arc<Inner>,
}

struct Inner {
    tty: bool,
    run_started: Instant,
    done: AtomicU64,
    total: AtomicU64,
    state: Mutex<Option<State>>,
    /// Serialises writes to stdout and stderr.
    out: Mutex<()>,
    stop: AtomicBool,
}

impl Progress {
    /// Starts the redraw thread when stderr is a terminal.
    pub fn new(run_started: Instant) -> Progress {
        let inner = Arc::new(Inner {
            tty: std::io::stderr().is_terminal(),
            run_started,
            done: AtomicU64::new(0),
            total: AtomicU64::new(0),
            state: Mutex::new(None),
            out: Mutex::new(()),
            stop: AtomicBool::new(false),
        });
        if inner.tty {
            let redraw = Arc::clone(&inner);
            std::thread::spawn(move || {
                while !redraw.stop.load(Ordering::Relaxed) {
                    {
                        let _out = redraw.out.lock();
                        redraw.draw();
                    }
                    std::thread::sleep(Duration::from_millis(REDRAW_MS));
                }
            });
        }
        Progress { inner }
    }

    /// Seconds since the run started, for narration.
    pub fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.inner.run_started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Starts a phase of `total` steps.
    pub fn phase(&self, name: &str, total: u64) {
        let _out = self.inner.out.lock();
        self.inner.done.store(0, Ordering::Relaxed);
        self.inner.total.store(total.max(1), Ordering::Relaxed);
        if let Ok(mut state) = self.inner.state.lock() {
            *state = Some(State {
                phase: name.to_owned(),
                started: Instant::now(),
            });
        }
        if self.inner.tty {
            self.inner.draw();
        } else {
            eprintln!("[{:>6}] ▶ {name} ({} steps)", self.clock(), total);
        }
    }

    /// One step of the current phase done.
    pub fn step(&self) {
        self.inner.done.fetch_add(1, Ordering::Relaxed);
    }

    /// Ends the current phase.
    pub fn finish(&self) {
        let _out = self.inner.out.lock();
        let state = self.inner.state.lock().ok().and_then(|mut s| s.take());
        if let Some(state) = state {
            let took = state.started.elapsed().as_secs_f64();
            let done = self.inner.done.load(Ordering::Relaxed);
            let total = self.inner.total.load(Ordering::Relaxed);
            if self.inner.tty {
                eprint!("\r\x1b[2K");
            }
            eprintln!(
                "[{:>6}] ✔ {} — {done}/{total} in {took:.1} s",
                self.clock(),
                state.phase
            );
        }
    }

    /// A narration line on stdout (the bar steps aside for it).
    pub fn say(&self, line: &str) {
        let _out = self.inner.out.lock();
        if self.inner.tty {
            eprint!("\r\x1b[2K");
        }
        println!("  {:>6}  {line}", self.clock());
        let _ = std::io::stdout().flush();
        if self.inner.tty {
            self.inner.draw();
        }
    }

    fn clock(&self) -> String {
        format!("{:.1}s", self.inner.run_started.elapsed().as_secs_f64())
    }

    /// Stops the redraw thread.
    pub fn close(&self) {
        self.inner.stop.store(true, Ordering::Relaxed);
        let _out = self.inner.out.lock();
        if self.inner.tty {
            eprint!("\r\x1b[2K");
        }
    }
}

impl Inner {
    fn draw(&self) {
        if !self.tty {
            return;
        }
        let Ok(state) = self.state.lock() else { return };
        let Some(state) = state.as_ref() else { return };
        let done = self.done.load(Ordering::Relaxed);
        let total = self.total.load(Ordering::Relaxed).max(1);
        let filled = usize::try_from(done.min(total) * BAR_CELLS as u64 / total).unwrap_or(0);
        eprint!(
            "\r\x1b[2K{:<28} [{}{}] {done}/{total} {:.1}s",
            state.phase,
            "█".repeat(filled),
            "░".repeat(BAR_CELLS - filled),
            state.started.elapsed().as_secs_f64()
        );
        let _ = std::io::stderr().flush();
    }
}
