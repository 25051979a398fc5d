//! A synthetic report of a demo-sized day, for the example page, the
//! screenshot in the README and the renderer's tests. It is not the demo's
//! output: the numbers come from a small seeded model in which every
//! movement of money is a transfer between two listed parties, so the
//! totals are conserved by construction (and checked below, not assumed).

use mpay_money::Currency;

use crate::model::{
    BalanceRow, DemoReport, ForkEntry, FraudCase, InvariantCheck, LatencySeries, OutcomeRow,
    PartyKind, PartySeries, PendingSeries, Phase,
};

/// A seeded generator (SplitMix64): the sample needs no more, and the crate
/// no RNG dependency.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % u64::try_from(n.max(1)).unwrap_or(1)).unwrap_or(0)
    }

    /// Uniform in (0, 1).
    fn unit(&mut self) -> f64 {
        (crate::scale::u64_f64(self.next() >> 11) + 0.5) / 9_007_199_254_740_992.0
    }

    /// Log-normal latency around `median_ms`.
    fn latency(&mut self, median_ms: f64, spread: f64) -> f64 {
        let (u1, u2) = (self.unit(), self.unit());
        let normal = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
        median_ms * (spread * normal).exp()
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.range(1, 100) <= percent
    }
}

/// Every party's balance over time; transfers only.
struct Ledger {
    names: Vec<String>,
    kinds: Vec<PartyKind>,
    balances: Vec<i64>,
    points: Vec<Vec<(u64, i64)>>,
    opening: Vec<i64>,
    /// Time of the latest transfer: the model books in time order.
    last_t: u64,
}

impl Ledger {
    fn new() -> Self {
        Ledger {
            names: Vec::new(),
            kinds: Vec::new(),
            balances: Vec::new(),
            points: Vec::new(),
            opening: Vec::new(),
            last_t: 0,
        }
    }

    fn open(&mut self, name: &str, kind: PartyKind, balance: i64) -> usize {
        self.names.push(name.to_owned());
        self.kinds.push(kind);
        self.balances.push(balance);
        self.points.push(vec![(0, balance)]);
        self.opening.push(balance);
        self.names.len() - 1
    }

    /// Moves `amount` from `from` to `to` at `t`; refuses (and moves
    /// nothing) when `from` may not go below zero and would, or on
    /// overflow.
    fn transfer(
        &mut self,
        t: u64,
        from: usize,
        to: usize,
        amount: i64,
        may_go_negative: bool,
    ) -> bool {
        assert!(
            t >= self.last_t,
            "sample booked out of time order: {t} after {}",
            self.last_t
        );
        self.last_t = t;
        let (Some(new_from), Some(new_to)) = (
            self.balances[from].checked_sub(amount),
            self.balances[to].checked_add(amount),
        ) else {
            return false;
        };
        if new_from < 0 && !may_go_negative {
            return false;
        }
        self.balances[from] = new_from;
        self.balances[to] = new_to;
        self.points[from].push((t, new_from));
        self.points[to].push((t, new_to));
        true
    }
}

struct Counter(Vec<OutcomeRow>);

impl Counter {
    fn add(&mut self, kind: &str, outcome: &str) {
        match self
            .0
            .iter_mut()
            .find(|r| r.kind == kind && r.outcome == outcome)
        {
            Some(r) => r.count += 1,
            None => self.0.push(OutcomeRow {
                kind: kind.to_owned(),
                outcome: outcome.to_owned(),
                count: 1,
            }),
        }
    }
}

const CUSTOMERS: [&str; 10] = [
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy",
];
const SHOPS: [&str; 3] = ["shop-1", "shop-2", "shop-3"];

/// [`sample_report`] whose only latency series is one refund of 53.4 ms:
/// too few samples to tell a p90 or a p99.
#[cfg(test)]
pub(crate) fn one_refund_report() -> DemoReport {
    let mut report = sample_report(7);
    report.latencies = vec![crate::model::LatencySeries {
        kind: "refund".into(),
        samples_ms: vec![53.4],
    }];
    report
}

/// A demo-sized report: 12 wallets, 3 banks (13 accounts and their
/// settlement accounts), 2 CPPs, 2 MPPs, the money office, a few hundred
/// payments, micropayment series crossing θ, and one double spend.
pub fn sample_report(seed: u64) -> DemoReport {
    let mut rng = SplitMix(seed);
    let eur = Currency::EUR;
    let mut report = DemoReport::new(
        "mpay demo — sample report (synthetic data)",
        seed,
        1_794_654_245_000,
        eur,
    );
    report.backend = "SQLite (sample)".to_owned();

    let phase_specs: [(&str, u64, u64, [&str; 2]); 9] = [
        (
            "start services",
            0,
            3_000,
            [
                "The money office, three banks, two DCs, two CPPs and two MPPs start on loopback.",
                "Each keeps its own SQLite database in the demo directory.",
            ],
        ),
        (
            "charge wallets",
            3_000,
            9_000,
            [
                "Twelve wallets are enrolled and charged from their owners' bank accounts.",
                "The office signs a charge voucher; the bank debits the owner.",
            ],
        ),
        (
            "offline purchases",
            12_000,
            30_000,
            [
                "Phones buy from the shops' phones over UDP with 20 % of datagrams dropped.",
                "One buyer's phone is killed mid-transfer and recovers from its log.",
            ],
        ),
        (
            "double spend",
            42_000,
            5_000,
            [
                "Ivan clones his wallet and pays two shops with the same chain entry.",
                "Both shops accept: offline, nobody can tell yet.",
            ],
        ),
        (
            "online payments",
            47_000,
            25_000,
            [
                "Macro payments at home and abroad: hold, merchant approval, post.",
                "One is rejected, one expires, one is refunded.",
            ],
        ),
        (
            "micropayments",
            72_000,
            38_000,
            [
                "Small payments add to each customer's pending total at the CPP.",
                "At θ, or when the window runs out, one bank transfer settles the total.",
            ],
        ),
        (
            "wrong PIN",
            110_000,
            2_000,
            [
                "A customer types a wrong PIN three times.",
                "The CPP locks the account and refuses the payment.",
            ],
        ),
        (
            "sync and settlement",
            112_000,
            13_000,
            [
                "Wallets sync with the money office; shops redeem their takings to the bank.",
                "Shop-2's sync reveals Ivan's fork: a fraud proof, a charge, a revocation.",
            ],
        ),
        (
            "reconcile",
            125_000,
            5_000,
            [
                "Every service's books are compared with the banks' ledgers.",
                "Conservation is checked per currency across every listed party.",
            ],
        ),
    ];
    for (name, started_ms, duration_ms, lines) in phase_specs {
        report.phases.push(Phase {
            name: name.to_owned(),
            started_ms,
            duration_ms,
            lines: lines.iter().map(|l| (*l).to_owned()).collect(),
        });
    }
    report.duration_ms = 130_000;

    let mut ledger = Ledger::new();
    let bank_of = |i: usize| i % 3;
    let accounts: Vec<usize> = CUSTOMERS
        .iter()
        .chain(SHOPS.iter())
        .enumerate()
        .map(|(i, name)| {
            let opening = if i < CUSTOMERS.len() {
                i64::try_from(rng.range(700, 1_400)).unwrap_or(700) * 100
            } else {
                20_000
            };
            ledger.open(
                &format!("bank-{}/{name}", bank_of(i) + 1),
                PartyKind::BankAccount,
                opening,
            )
        })
        .collect();
    // settlement[a][b]: bank a's settlement account with bank b.
    let mut settlement = [[usize::MAX; 3]; 3];
    for (a, row) in settlement.iter_mut().enumerate() {
        for (b, slot) in row.iter_mut().enumerate() {
            if a != b {
                *slot = ledger.open(
                    &format!("bank-{}/settlement:bank-{}", a + 1, b + 1),
                    PartyKind::Settlement,
                    0,
                );
            }
        }
    }
    let wallet_names: Vec<String> = CUSTOMERS
        .iter()
        .map(|c| format!("wallet {c}"))
        .chain(["wallet shop-1".to_owned(), "wallet shop-2".to_owned()])
        .collect();
    let wallets: Vec<usize> = wallet_names
        .iter()
        .map(|w| ledger.open(w, PartyKind::Wallet, 0))
        .collect();
    let float_shortfall = ledger.open("office: unbacked value", PartyKind::MoneyOffice, 0);
    let cpps = [
        ledger.open("cpp-north", PartyKind::Cpp, 0),
        ledger.open("cpp-south", PartyKind::Cpp, 0),
    ];
    let mpps = [
        ledger.open("mpp-north", PartyKind::Mpp, 0),
        ledger.open("mpp-south", PartyKind::Mpp, 0),
    ];

    // Moves money between two bank accounts, through settlement accounts
    // when the banks differ.
    let interbank = |ledger: &mut Ledger, t: u64, from: usize, to: usize, amount: i64| -> bool {
        let (bf, bt) = (bank_of(from), bank_of(to));
        if bf == bt {
            return ledger.transfer(t, accounts[from], accounts[to], amount, false);
        }
        ledger.transfer(t, accounts[from], settlement[bf][bt], amount, false)
            && ledger.transfer(t + 40, settlement[bt][bf], accounts[to], amount, true)
    };

    let mut outcomes = Counter(Vec::new());
    let mut offline_ms = Vec::new();
    let mut macro_home_ms = Vec::new();
    let mut macro_abroad_ms = Vec::new();
    let mut micro_ms = Vec::new();

    // Charge wallets: owner's bank account → wallet.
    for (i, &w) in wallets.iter().enumerate() {
        let t = 3_500 + 600 * u64::try_from(i).unwrap_or(0);
        // Wallet i belongs to the owner of account i (customers, then shops).
        let owner = i;
        let amount = if i < CUSTOMERS.len() { 15_000 } else { 2_000 };
        ledger.transfer(t, accounts[owner], w, amount, false);
    }

    // Offline purchases: customer wallets pay the two shop wallets.
    let shop_wallets = [wallets[10], wallets[11]];
    for k in 0..160u64 {
        let t = 12_200 + k * 180 + rng.range(0, 150);
        let buyer = rng.below(CUSTOMERS.len());
        let seller = shop_wallets[rng.below(2)];
        let amount = i64::try_from(rng.range(50, 1_200)).unwrap_or(100);
        let dropped = rng.chance(20);
        let lat = if dropped {
            rng.latency(260.0, 0.5)
        } else {
            rng.latency(38.0, 0.35)
        };
        if k == 77 {
            // The phone killed mid-transfer: recovered, then committed late.
            offline_ms.push(rng.latency(2_400.0, 0.1));
            if ledger.transfer(t, wallets[buyer], seller, amount, false) {
                outcomes.add("offline purchase", "completed");
            }
            continue;
        }
        if rng.chance(4) {
            offline_ms.push(lat * 3.0);
            outcomes.add("offline purchase", "aborted");
            continue;
        }
        offline_ms.push(lat);
        if ledger.transfer(t, wallets[buyer], seller, amount, false) {
            outcomes.add("offline purchase", "completed");
        } else {
            outcomes.add("offline purchase", "rejected: funds");
        }
    }

    // The double spend: Ivan's clone pays shop-2 with the entry his phone
    // already used at shop-1. The second payment is value nothing backs.
    let ivan = 8;
    let fork_amount = 4_500;
    let fork_seq = u64::try_from(ledger.points[wallets[ivan]].len()).unwrap_or(1) + 1;
    ledger.transfer(43_000, wallets[ivan], shop_wallets[0], fork_amount, false);
    ledger.transfer(44_500, float_shortfall, shop_wallets[1], fork_amount, true);
    outcomes.add("offline purchase", "completed");
    outcomes.add("offline purchase", "completed (double spend)");
    offline_ms.push(rng.latency(38.0, 0.3));
    offline_ms.push(rng.latency(38.0, 0.3));

    // Online macro payments: customers pay shops' bank accounts.
    for k in 0..80u64 {
        let t = 47_500 + k * 300 + rng.range(0, 200);
        let customer = rng.below(CUSTOMERS.len());
        let shop = CUSTOMERS.len() + rng.below(SHOPS.len());
        let abroad = shop == CUSTOMERS.len() + 2;
        let kind = if abroad {
            "macro international"
        } else {
            "macro domestic"
        };
        let amount = i64::try_from(rng.range(500, 4_000)).unwrap_or(1_000);
        let lat = if abroad {
            rng.latency(64.0, 0.3)
        } else {
            rng.latency(27.0, 0.3)
        };
        if abroad {
            macro_abroad_ms.push(lat);
        } else {
            macro_home_ms.push(lat);
        }
        let outcome = match k {
            13 => "rejected by merchant",
            41 => "expired",
            _ if interbank(&mut ledger, t, customer, shop, amount) => "completed",
            _ => "rejected: funds",
        };
        outcomes.add(kind, outcome);
        if k == 60 && outcome == "completed" {
            // The refund runs the same path back.
            if interbank(&mut ledger, t + 50, shop, customer, amount) {
                outcomes.add(kind, "refunded");
            }
        }
    }

    // Micropayments at the two CPPs, pending totals against θ.
    let micro_customers = [0usize, 1, 2, 3, 5, 6];
    let thetas = [500i64, 500, 800, 800, 300, 1_000];
    let window_ms = 20_000u64;
    let mut pending = [0i64; 6];
    let mut oldest = [None::<u64>; 6];
    let mut series: Vec<PendingSeries> = micro_customers
        .iter()
        .zip(thetas)
        .map(|(&c, theta)| PendingSeries {
            label: format!(
                "{} (cluster {})",
                CUSTOMERS[c],
                if theta >= 800 { "B" } else { "A" }
            ),
            theta_minor: theta,
            window_ms,
            points: vec![(0, 0)],
            settlements: Vec::new(),
        })
        .collect();
    let mut owed_to_merchants = [0i64; 2];
    let mut settle = |ledger: &mut Ledger,
                      s: usize,
                      t: u64,
                      pending: &mut [i64; 6],
                      series: &mut [PendingSeries]| {
        let cpp = cpps[s % 2];
        if ledger.transfer(t, accounts[micro_customers[s]], cpp, pending[s], false) {
            series[s].settlements.push(t);
            owed_to_merchants[s % 2] += pending[s];
            pending[s] = 0;
            series[s].points.push((t, 0));
            true
        } else {
            false
        }
    };
    for k in 0..360u64 {
        let t = 72_200 + k * 100 + rng.range(0, 90);
        // Windows that ran out settle first.
        for s in 0..series.len() {
            if let Some(since) = oldest[s]
                && t.saturating_sub(since) >= window_ms
                && pending[s] > 0
            {
                settle(&mut ledger, s, t, &mut pending, &mut series);
                oldest[s] = None;
            }
        }
        let s = rng.below(series.len());
        let amount = i64::try_from(rng.range(5, 120)).unwrap_or(10);
        micro_ms.push(rng.latency(4.0, 0.4));
        let total = pending[s] + amount;
        if total >= series[s].theta_minor {
            pending[s] = total;
            series[s].points.push((t, total));
            if settle(&mut ledger, s, t + 5, &mut pending, &mut series) {
                outcomes.add("micro", "settled at θ");
            } else {
                pending[s] -= amount;
                series[s].points.push((t + 5, pending[s]));
                outcomes.add("micro", "rejected: funds");
            }
            oldest[s] = None;
        } else {
            pending[s] = total;
            oldest[s].get_or_insert(t);
            series[s].points.push((t, total));
            outcomes.add("micro", "DT confirmed");
        }
    }
    // Wrong PIN lockout.
    outcomes.add("macro domestic", "refused: PIN lockout");

    // Sync and settlement: what is still pending settles; CPPs pay the
    // MPPs, MPPs pay the shops; shops redeem their wallets to the bank.
    for s in 0..series.len() {
        if pending[s] > 0 {
            settle(
                &mut ledger,
                s,
                112_500 + 200 * u64::try_from(s).unwrap_or(0),
                &mut pending,
                &mut series,
            );
        }
    }
    for (i, (&cpp, &mpp)) in cpps.iter().zip(&mpps).enumerate() {
        let t = 114_000 + 1_000 * u64::try_from(i).unwrap_or(0);
        let owed = owed_to_merchants[i];
        ledger.transfer(t, cpp, mpp, owed, false);
        let shop = CUSTOMERS.len() + i;
        ledger.transfer(t + 500, mpp, accounts[shop], owed, false);
    }
    let caught_at_ms = 119_400;
    for (i, &w) in shop_wallets.iter().enumerate() {
        let t = 118_000 + 1_400 * u64::try_from(i).unwrap_or(0);
        let takings = ledger.balances[w];
        ledger.transfer(t, w, accounts[CUSTOMERS.len() + i], takings, false);
    }
    // The office charges Ivan's bank account for the value his fork made.
    ledger.transfer(
        caught_at_ms + 600,
        accounts[ivan],
        float_shortfall,
        fork_amount,
        true,
    );

    report.frauds.push(FraudCase {
        wallet: "wallet ivan".to_owned(),
        owner: "ivan".to_owned(),
        seq: fork_seq,
        first: ForkEntry {
            hex: fake_entry_hex(&mut rng),
            summary: "pay 45.00 EUR to wallet shop-1".to_owned(),
        },
        second: ForkEntry {
            hex: fake_entry_hex(&mut rng),
            summary: "pay 45.00 EUR to wallet shop-2".to_owned(),
        },
        charged_minor: fork_amount,
        caught_at_ms,
        caught_by: "sync of wallet shop-2".to_owned(),
        revoked: true,
    });

    report.latencies = vec![
        LatencySeries {
            kind: "offline purchase".into(),
            samples_ms: offline_ms,
        },
        LatencySeries {
            kind: "macro domestic".into(),
            samples_ms: macro_home_ms,
        },
        LatencySeries {
            kind: "macro international".into(),
            samples_ms: macro_abroad_ms,
        },
        LatencySeries {
            kind: "micro".into(),
            samples_ms: micro_ms,
        },
    ];
    report.outcomes = outcomes.0;
    report.micro = series;
    for (i, name) in ledger.names.iter().enumerate() {
        report.money.push(PartySeries {
            party: name.clone(),
            kind: ledger.kinds[i],
            currency: None,
            points: ledger.points[i].clone(),
        });
        report.balances.push(BalanceRow {
            party: name.clone(),
            kind: ledger.kinds[i],
            currency: None,
            before_minor: ledger.opening[i],
            after_minor: ledger.balances[i],
        });
    }

    let totals = crate::stats::balance_totals(&report);
    let never_negative = ledger.names.iter().enumerate().all(|(i, _)| {
        !matches!(ledger.kinds[i], PartyKind::Wallet | PartyKind::BankAccount)
            || ledger.points[i].iter().all(|p| p.1 >= 0)
    });
    let forks_attempted = 1;
    report.invariants = totals
        .iter()
        .map(|t| InvariantCheck {
            name: format!("conservation ({})", t.currency),
            ok: t.conserved(),
            detail: format!(
                "sum over {} parties: {} before, {} after",
                t.rows,
                t.before.map_or("overflow".to_owned(), |a| a.to_string()),
                t.after.map_or("overflow".to_owned(), |a| a.to_string()),
            ),
        })
        .collect();
    report.invariants.extend([
        InvariantCheck {
            name: "no wallet or customer account below zero".into(),
            ok: never_negative,
            detail: "checked at every recorded balance".into(),
        },
        InvariantCheck {
            name: "every double spend caught".into(),
            ok: report.frauds.len() == forks_attempted && report.frauds.iter().all(|f| f.revoked),
            detail: format!(
                "{forks_attempted} fork attempted, {} caught and revoked",
                report.frauds.iter().filter(|f| f.revoked).count()
            ),
        },
        InvariantCheck {
            name: "unbacked value recovered".into(),
            ok: ledger.balances[float_shortfall] == 0,
            detail: format!(
                "office's unbacked value at the end: {}",
                crate::format::money(ledger.balances[float_shortfall], eur)
            ),
        },
    ]);
    report
}

/// 64 hex digits standing in for a signed entry's hash.
fn fake_entry_hex(rng: &mut SplitMix) -> String {
    (0..4).map(|_| format!("{:016x}", rng.next())).collect()
}
