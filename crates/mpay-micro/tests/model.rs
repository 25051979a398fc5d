//! The in-memory pending structure against a plain model: random adds,
//! settlements that succeed or fail, window sweeps and take-backs of
//! rejected micropayments; after every step
//! the totals, counts and exposure agree, and money is conserved.

use std::collections::BTreeMap;

use mpay_identity::{PartyId, Timestamp};
use mpay_micro::pending::{AddOutcome, Aggregator, Taken};
use mpay_micro::policy::{MicroLimits, Refusal};
use mpay_money::{Amount, Currency};
use proptest::prelude::*;

const EUR: Currency = Currency::EUR;
const W: u64 = 500;

#[derive(Debug, Clone)]
enum Op {
    Add {
        customer: u8,
        amount: i64,
        dt: u64,
    },
    End {
        ok: bool,
    },
    Sweep {
        dt: u64,
    },
    /// Take back one of `customer`'s open micropayments (the `nth`, modulo
    /// their number), or, with none open, a payment that is not open.
    TakeBack {
        customer: u8,
        nth: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u8..4, 1i64..700, 0u64..100).prop_map(|(customer, amount, dt)| Op::Add { customer, amount, dt }),
        2 => any::<bool>().prop_map(|ok| Op::End { ok }),
        1 => (0u64..1_000).prop_map(|dt| Op::Sweep { dt }),
        2 => (0u8..4, 0usize..8).prop_map(|(customer, nth)| Op::TakeBack { customer, nth }),
    ]
}

#[derive(Default, Debug)]
struct Model {
    /// Open micropayments per customer: (payment, amount).
    open: BTreeMap<u8, Vec<(u64, i64)>>,
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
                    let pending: i64 = items.iter().map(|(_, a)| a).sum();
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
                            items.push((payment, amount));
                            model.accepted += amount;
                        }
                        AddOutcome::SettleNeeded(batch) => {
                            prop_assert_eq!(batch.total.minor_units(), pending + amount);
                            items.push((payment, amount));
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
                            model.collected += items.iter().map(|(_, a)| a).sum::<i64>();
                            items.clear();
                            model.blocked.insert(customer, false);
                        } else {
                            agg.failed(batch, &limits, Timestamp(now)).unwrap();
                            if has_trigger {
                                let (_, trigger) = items.pop().unwrap();
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
                Op::TakeBack { customer, nth } => {
                    let id = PartyId::from_u64(u64::from(customer));
                    let items = model.open.entry(customer).or_default();
                    let Some(&(which, amount)) = items.get(nth % items.len().max(1)) else {
                        // Nothing open: a payment never added is not open.
                        prop_assert_eq!(agg.take_back(&id, u64::MAX, &limits).unwrap(), Taken::NotOpen);
                        continue;
                    };
                    let settling = in_flight.iter().find(|(c, _, _)| *c == customer);
                    let out = agg.take_back(&id, which, &limits).unwrap();
                    if let Some((_, batch, _)) = settling {
                        prop_assert_eq!(out, Taken::InFlight(*batch));
                    } else {
                        items.retain(|(p, _)| *p != which);
                        let left: i64 = items.iter().map(|(_, a)| a).sum();
                        prop_assert_eq!(out, Taken::Removed { total: Amount::new(left, EUR) });
                        model.rejected += amount;
                        if items.is_empty() {
                            model.blocked.insert(customer, false);
                        }
                        // Once out, it is not open.
                        prop_assert_eq!(agg.take_back(&id, which, &limits).unwrap(), Taken::NotOpen);
                    }
                }
            }
            agg.check().unwrap();
            let pending: i64 = model.open.values().flatten().map(|(_, a)| a).sum();
            prop_assert_eq!(agg.pending_sum().unwrap().minor_units(), pending);
            // Conservation: accepted = collected + rejected + still pending.
            prop_assert_eq!(model.accepted, model.collected + model.rejected + pending);
            for (c, items) in &model.open {
                let p = agg.pending(&PartyId::from_u64(u64::from(*c)));
                prop_assert_eq!(p.map_or(0, |p| p.total.minor_units()), items.iter().map(|(_, a)| a).sum::<i64>());
                prop_assert_eq!(p.map_or(0, |p| p.count), items.len() as u64);
            }
        }
    }
}
