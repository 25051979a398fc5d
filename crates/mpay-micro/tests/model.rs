//! The in-memory pending structure against a plain model: random adds,
//! settlements that succeed or fail, and window sweeps; after every step
//! the totals, counts and exposure agree, and money is conserved.

use std::collections::BTreeMap;

use mpay_identity::{PartyId, Timestamp};
use mpay_micro::pending::{AddOutcome, Aggregator};
use mpay_micro::policy::{MicroLimits, Refusal};
use mpay_money::{Amount, Currency};
use proptest::prelude::*;

const EUR: Currency = Currency::EUR;
const W: u64 = 500;

#[derive(Debug, Clone)]
enum Op {
    Add { customer: u8, amount: i64, dt: u64 },
    End { ok: bool },
    Sweep { dt: u64 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u8..4, 1i64..700, 0u64..100).prop_map(|(customer, amount, dt)| Op::Add { customer, amount, dt }),
        2 => any::<bool>().prop_map(|ok| Op::End { ok }),
        1 => (0u64..1_000).prop_map(|dt| Op::Sweep { dt }),
    ]
}

#[derive(Default, Debug)]
struct Model {
    open: BTreeMap<u8, Vec<i64>>,
    blocked: BTreeMap<u8, bool>,
    accepted: i64,
    collected: i64,
    rejected: i64,
}

proptest! {
    #[test]
    fn aggregator_matches_the_model(ops in proptest::collection::vec(op(), 1..200)) {
        let limits = MicroLimits::new(Amount::new(600, EUR), Amount::new(1_000, EUR), W).unwrap();
        let mut agg = Aggregator::new(EUR, 0);
        let mut model = Model::default();
        let mut now = 0u64;
        let mut payment = 0u64;
        let mut in_flight = Vec::new();
        for op in ops {
            match op {
                Op::Add { customer, amount, dt } => {
                    now += dt;
                    payment += 1;
                    let id = PartyId::from_u64(u64::from(customer));
                    let out = agg.add(id, payment, Amount::new(amount, EUR), &limits, Timestamp(now)).unwrap();
                    let items = model.open.entry(customer).or_default();
                    let pending: i64 = items.iter().sum();
                    let settling = in_flight.iter().any(|(c, _, _)| *c == customer);
                    match out {
                        AddOutcome::Macro => prop_assert!(amount > 600),
                        AddOutcome::Refused(Refusal::SettlementInFlight) => prop_assert!(settling),
                        AddOutcome::Refused(Refusal::Blocked) => {
                            prop_assert!(model.blocked.get(&customer).copied().unwrap_or(false));
                        }
                        AddOutcome::Deferred { total } => {
                            prop_assert!(pending + amount < 1_000);
                            prop_assert_eq!(total.minor_units(), pending + amount);
                            items.push(amount);
                            model.accepted += amount;
                        }
                        AddOutcome::SettleNeeded(batch) => {
                            prop_assert_eq!(batch.total.minor_units(), pending + amount);
                            items.push(amount);
                            model.accepted += amount;
                            in_flight.push((customer, batch.id, true));
                        }
                    }
                }
                Op::End { ok } => {
                    if let Some((customer, batch, has_trigger)) = in_flight.pop() {
                        let items = model.open.entry(customer).or_default();
                        if ok {
                            agg.settled(batch).unwrap();
                            model.collected += items.iter().sum::<i64>();
                            items.clear();
                            model.blocked.insert(customer, false);
                        } else {
                            agg.failed(batch, &limits, Timestamp(now)).unwrap();
                            if has_trigger {
                                let trigger = items.pop().unwrap();
                                model.rejected += trigger;
                            }
                            model.blocked.insert(customer, !items.is_empty());
                        }
                    }
                }
                Op::Sweep { dt } => {
                    now += dt;
                    for id in agg.due_for_window(Timestamp(now), 10) {
                        let customer = id.0[7];
                        if let Some(batch) = agg.start_settlement(id) {
                            in_flight.push((customer, batch.id, false));
                        }
                    }
                }
            }
            agg.check().unwrap();
            let pending: i64 = model.open.values().flatten().sum();
            prop_assert_eq!(agg.pending_sum().unwrap().minor_units(), pending);
            // Conservation: accepted = collected + rejected + still pending.
            prop_assert_eq!(model.accepted, model.collected + model.rejected + pending);
            for (c, items) in &model.open {
                let p = agg.pending(&PartyId::from_u64(u64::from(*c)));
                prop_assert_eq!(p.map_or(0, |p| p.total.minor_units()), items.iter().sum::<i64>());
                prop_assert_eq!(p.map_or(0, |p| p.count), items.len() as u64);
            }
        }
    }
}
