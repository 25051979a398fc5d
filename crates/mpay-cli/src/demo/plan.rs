//! The scripted day, drawn from one seed: who banks where, how much each
//! owner moves to the money office and loads into a wallet, which wallets
//! buy what offline, whose phone dies mid-purchase, who clones a wallet,
//! and every online payment with its twist. Pure: no clock, no I/O; the
//! same seed and size give the same plan.

use rand_chacha::ChaCha20Rng;
use rand_core::{Rng as _, SeedableRng};

/// The banks of the provisioned network, in its order.
pub const BANKS: [&str; 3] = ["bank1", "bank2", "bank3"];
/// Customers of the day (wallet owners and SEMOPS customers).
const CUSTOMERS: [&str; 8] = [
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi",
];
/// The owner who copies a wallet and spends from both copies.
pub const CHEAT: &str = "mallory";
/// Shops: offline sellers and online merchants, with their bank and MPP.
pub const SHOPS: [Shop; 3] = [
    Shop {
        name: "bakery",
        bank: 1,
        mpp: "mpp1",
    },
    Shop {
        name: "cafe",
        bank: 0,
        mpp: "mpp1",
    },
    Shop {
        name: "kiosk",
        bank: 2,
        mpp: "mpp2",
    },
];
/// Smallest and largest opening bank balance of a customer, minor units.
const BANK_DEPOSIT_MINOR_MIN: i64 = 30_000;
const BANK_DEPOSIT_MINOR_MAX: i64 = 60_000;
/// What a customer moves to the money office, minor units.
const OFFICE_TRANSFER_MINOR_MIN: i64 = 8_000;
const OFFICE_TRANSFER_MINOR_MAX: i64 = 16_000;
/// The cheat's transfer and charge: the office must be able to charge the
/// owner the duplicated value from what is left in the owner's account.
const CHEAT_TRANSFER_MINOR: i64 = 15_000;
const CHEAT_CHARGE_MINOR: i64 = 5_000;
/// An offline purchase, minor units (under the wallets' per-payment limit).
const PURCHASE_MINOR_MIN: i64 = 1_00;
const PURCHASE_MINOR_MAX: i64 = 2_500;
/// An online payment, minor units.
const PAYMENT_MINOR_MIN: i64 = 2_00;
const PAYMENT_MINOR_MAX: i64 = 4_500;
/// Purchases that may run at once: each pair on its own, no wallet in two.
pub const PAIRS_AT_ONCE_MAX: usize = 3;
/// Largest sizes the plan accepts.
pub const PURCHASES_MAX: usize = 64;
/// (Kept so that every planned payment fits in what the customers have
/// left at the bank, whatever the seed.)
pub const PAYMENTS_MAX: usize = 24;
/// Draws of a payer with enough money before taking the richest one.
const DRAW_TRIES_MAX: usize = 32;
/// Customers who pay a stream of micropayments, each its own stream.
pub const MICRO_CUSTOMERS: usize = 4;
/// Micropayments in one customer's stream.
pub const MICRO_PER_CUSTOMER: usize = 20;
/// A micropayment, minor units (under the CPP's micro limit of 1.00).
const MICRO_MINOR_MIN: i64 = 20;
const MICRO_MINOR_MAX: i64 = 100;
/// The CPPs' θ in the demo: a customer's pending total that makes the CPP
/// collect it in one bank transfer.
pub const MICRO_THETA_MINOR: i64 = 5_00;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shop {
    pub name: &'static str,
    /// Index into [`BANKS`].
    pub bank: usize,
    pub mpp: &'static str,
}

impl Shop {
    pub fn region(&self) -> &'static str {
        region_of_processor(self.mpp)
    }
}

/// "eu" for cpp1/mpp1, "us" for cpp2/mpp2 (the provisioned topology).
pub fn region_of_processor(name: &str) -> &'static str {
    if name.ends_with('2') { "us" } else { "eu" }
}

/// How big a day.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Size {
    /// Offline purchases besides the crash and the double spend.
    pub purchases: usize,
    /// Approved online payments besides the scripted twists.
    pub payments: usize,
}

/// What a person does with a wallet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Customer,
    Cheat,
    Shop,
}

/// One of the dozen wallet owners.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Person {
    pub name: &'static str,
    pub role: Role,
    /// Index into [`BANKS`].
    pub bank: usize,
    /// Opening balance of `cust:<name>` (customers) at the bank.
    pub bank_deposit_minor: i64,
    /// Moved from the bank account to the office's account at the same
    /// bank, and credited to the owner's office account.
    pub office_transfer_minor: i64,
    /// Loaded from the owner's office account into the wallet.
    pub wallet_charge_minor: i64,
}

impl Person {
    /// The customer's processor: the CPP of the bank's region.
    pub fn cpp(&self) -> &'static str {
        if self.bank == 2 { "cpp2" } else { "cpp1" }
    }

    /// The bank account the person pays from.
    pub fn bank_account(&self) -> String {
        match self.role {
            Role::Shop => format!("shop:{}", self.name),
            _ => format!("cust:{}", self.name),
        }
    }
}

/// An offline purchase: `buyer` pays `seller` over UDP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Purchase {
    /// Indices into [`Plan::people`].
    pub buyer: usize,
    pub seller: usize,
    pub amount_minor: i64,
    /// Purchases of one round run at once.
    pub round: usize,
}

/// The double spend: the cheat's wallet is copied; the original pays
/// `first` at one shop, the copy `second` at another.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Clone2 {
    pub cheat: usize,
    pub first_shop: usize,
    pub first_minor: i64,
    pub second_shop: usize,
    pub second_minor: i64,
}

/// What the merchant does with an online payment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Twist {
    Approve,
    Reject,
    /// Nobody decides: the payment expires at the CPP's decision timeout.
    Ignore,
}

/// An online (macro) payment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Payment {
    /// Index into [`Plan::people`] (a customer or the cheat).
    pub customer: usize,
    /// Index into [`SHOPS`].
    pub shop: usize,
    pub amount_minor: i64,
    pub twist: Twist,
}

/// A micropayment of a customer's stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Micro {
    /// Index into [`SHOPS`].
    pub shop: usize,
    pub amount_minor: i64,
}

/// One customer's micropayments, paid one after the other.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MicroStream {
    /// Index into [`Plan::people`].
    pub customer: usize,
    pub payments: Vec<Micro>,
}

impl MicroStream {
    #[cfg(test)]
    /// How many times the pending total reaches `theta_minor` if no window
    /// settles it first (the payment that reaches it is collected with it).
    pub fn crossings(&self, theta_minor: i64) -> usize {
        let mut pending = 0;
        let mut n = 0;
        for p in &self.payments {
            pending += p.amount_minor;
            if pending >= theta_minor {
                pending = 0;
                n += 1;
            }
        }
        n
    }

    #[cfg(test)]
    /// What is left pending after the stream (the window settles it).
    pub fn remainder(&self, theta_minor: i64) -> i64 {
        self.payments.iter().fold(0, |pending, p| {
            if pending + p.amount_minor >= theta_minor {
                0
            } else {
                pending + p.amount_minor
            }
        })
    }

    #[cfg(test)]
    pub fn total_minor(&self) -> i64 {
        self.payments.iter().map(|p| p.amount_minor).sum()
    }
}

/// The whole day.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    pub seed: u64,
    pub people: Vec<Person>,
    /// Round after round of purchases (pairs of one round are disjoint).
    pub purchases: Vec<Purchase>,
    /// The purchase during which the buyer's phone is SIGKILLed.
    pub crash: Purchase,
    pub clone: Clone2,
    /// Approved payments, run a few at a time.
    pub payments: Vec<Payment>,
    /// Index into `payments` of the one during which `cpp` is SIGKILLed
    /// after the merchant got the notice.
    pub cpp_crash: usize,
    pub rejected: Payment,
    pub expired: Payment,
    /// Index into `payments` of the payment partly refunded, and how much.
    pub refund: (usize, i64),
    /// A payment submitted twice with one idempotency key.
    pub duplicated: Payment,
    /// The customer who types wrong PINs until locked, then is unlocked
    /// and pays `lockout` .
    pub lockout: Payment,
    /// Streams of micropayments, run side by side.
    pub micro: Vec<MicroStream>,
}

fn between(rng: &mut ChaCha20Rng, lo: i64, hi: i64) -> i64 {
    let span = u64::try_from(hi - lo + 1).unwrap_or(1).max(1);
    lo + i64::try_from(rng.next_u64() % span).unwrap_or(0)
}

fn pick(rng: &mut ChaCha20Rng, n: usize) -> usize {
    let n64 = u64::try_from(n.max(1)).unwrap_or(1);
    usize::try_from(rng.next_u64() % n64).unwrap_or(0)
}

/// Amount rounded down to whole 5 cents (prices look like prices).
fn price(rng: &mut ChaCha20Rng, lo: i64, hi: i64) -> i64 {
    (between(rng, lo, hi) / 5 * 5).max(lo)
}

impl Plan {
    /// The day for `seed` at `size` (clamped to the named maxima).
    pub fn new(seed: u64, size: Size) -> Plan {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let purchases_n = size.purchases.min(PURCHASES_MAX);
        let payments_n = size.payments.clamp(1, PAYMENTS_MAX);
        let mut people = Vec::new();
        for name in CUSTOMERS {
            let bank = pick(&mut rng, BANKS.len());
            let transfer = between(
                &mut rng,
                OFFICE_TRANSFER_MINOR_MIN / 100,
                OFFICE_TRANSFER_MINOR_MAX / 100,
            ) * 100;
            let charge = between(&mut rng, transfer / 200, transfer * 3 / 400) * 100;
            people.push(Person {
                name,
                role: Role::Customer,
                bank,
                bank_deposit_minor: between(
                    &mut rng,
                    BANK_DEPOSIT_MINOR_MIN / 100,
                    BANK_DEPOSIT_MINOR_MAX / 100,
                ) * 100,
                office_transfer_minor: transfer,
                wallet_charge_minor: charge,
            });
        }
        people.push(Person {
            name: CHEAT,
            role: Role::Cheat,
            bank: pick(&mut rng, BANKS.len()),
            bank_deposit_minor: BANK_DEPOSIT_MINOR_MIN,
            office_transfer_minor: CHEAT_TRANSFER_MINOR,
            wallet_charge_minor: CHEAT_CHARGE_MINOR,
        });
        for shop in SHOPS {
            people.push(Person {
                name: shop.name,
                role: Role::Shop,
                bank: shop.bank,
                bank_deposit_minor: 0,
                office_transfer_minor: 0,
                wallet_charge_minor: 0,
            });
        }
        let customers: Vec<usize> = people
            .iter()
            .enumerate()
            .filter(|(_, p)| p.role == Role::Customer)
            .map(|(i, _)| i)
            .collect();
        let shops: Vec<usize> = people
            .iter()
            .enumerate()
            .filter(|(_, p)| p.role == Role::Shop)
            .map(|(i, _)| i)
            .collect();
        let cheat = people
            .iter()
            .position(|p| p.role == Role::Cheat)
            .unwrap_or(0);

        // Offline purchases: a buyer never plans to spend more than its
        // wallet holds; one in four sells to another customer.
        let mut wallet: Vec<i64> = people.iter().map(|p| p.wallet_charge_minor).collect();
        let mut purchases: Vec<Purchase> = Vec::new();
        let mut tries = 0;
        while purchases.len() < purchases_n && tries < purchases_n * 20 {
            tries += 1;
            let buyer = customers[pick(&mut rng, customers.len())];
            let seller = if pick(&mut rng, 4) == 0 {
                customers[pick(&mut rng, customers.len())]
            } else {
                shops[pick(&mut rng, shops.len())]
            };
            if seller == buyer {
                continue;
            }
            let amount = price(&mut rng, PURCHASE_MINOR_MIN, PURCHASE_MINOR_MAX);
            if wallet[buyer] < amount {
                continue;
            }
            wallet[buyer] -= amount;
            wallet[seller] += amount;
            // First round where neither side is busy and there is room.
            let mut round = 0;
            loop {
                let in_round: Vec<&Purchase> =
                    purchases.iter().filter(|p| p.round == round).collect();
                let busy = in_round.iter().any(|p| {
                    p.buyer == buyer || p.seller == buyer || p.buyer == seller || p.seller == seller
                });
                if !busy && in_round.len() < PAIRS_AT_ONCE_MAX {
                    break;
                }
                round += 1;
            }
            purchases.push(Purchase {
                buyer,
                seller,
                amount_minor: amount,
                round,
            });
        }
        purchases.sort_by_key(|p| p.round);

        // The crash: a customer with money left buys from a shop.
        let crash = {
            let buyer = *customers
                .iter()
                .max_by_key(|&&c| (wallet[c], c))
                .unwrap_or(&customers[0]);
            let seller = shops[pick(&mut rng, shops.len())];
            let amount = price(&mut rng, PURCHASE_MINOR_MIN, wallet[buyer].min(1_500));
            wallet[buyer] -= amount;
            Purchase {
                buyer,
                seller,
                amount_minor: amount,
                round: 0,
            }
        };

        // The double spend: both copies spend most of the same money.
        let first_shop = shops[pick(&mut rng, shops.len())];
        let second_shop = shops[(shops.iter().position(|&s| s == first_shop).unwrap_or(0)
            + 1
            + pick(&mut rng, shops.len() - 1))
            % shops.len()];
        let clone = Clone2 {
            cheat,
            first_shop,
            first_minor: price(&mut rng, 2_000, CHEAT_CHARGE_MINOR - 1_000),
            second_shop,
            second_minor: price(&mut rng, 2_000, CHEAT_CHARGE_MINOR - 500),
        };

        // Online payments from what is left in the bank accounts.
        let mut bank: Vec<i64> = people
            .iter()
            .map(|p| p.bank_deposit_minor - p.office_transfer_minor)
            .collect();
        let payers: Vec<usize> = customers.iter().copied().chain([cheat]).collect();
        let draw = |rng: &mut ChaCha20Rng, twist: Twist, bank: &mut Vec<i64>| {
            let mut customer = payers[pick(rng, payers.len())];
            let shop = pick(rng, SHOPS.len());
            let mut amount = price(rng, PAYMENT_MINOR_MIN, PAYMENT_MINOR_MAX);
            let mut tries = 0;
            while bank[customer] < amount && tries < DRAW_TRIES_MAX {
                customer = payers[pick(rng, payers.len())];
                tries += 1;
            }
            if bank[customer] < amount {
                customer = *payers
                    .iter()
                    .max_by_key(|&&p| (bank[p], p))
                    .unwrap_or(&cheat);
                amount = (bank[customer] / 5 * 5).min(amount);
            }
            if twist == Twist::Approve {
                bank[customer] -= amount;
            }
            Payment {
                customer,
                shop,
                amount_minor: amount,
                twist,
            }
        };
        let mut payments = Vec::new();
        for _ in 0..payments_n {
            payments.push(draw(&mut rng, Twist::Approve, &mut bank));
        }
        // At least one payment abroad and one at home, whatever the seed.
        if let Some(first) = payments.first_mut() {
            let home = people[first.customer].cpp();
            first.shop = SHOPS
                .iter()
                .position(|s| s.region() == region_of_processor(home))
                .unwrap_or(0);
        }
        if payments.len() > 1 {
            let last = payments.len() - 1;
            let home = people[payments[last].customer].cpp();
            payments[last].shop = SHOPS
                .iter()
                .position(|s| s.region() != region_of_processor(home))
                .unwrap_or(0);
        }
        let cpp_crash = pick(&mut rng, payments.len());
        let refunded = pick(&mut rng, payments.len());
        let refund_minor = (payments[refunded].amount_minor / 2 / 5 * 5).max(1);
        let rejected = draw(&mut rng, Twist::Reject, &mut bank);
        let expired = draw(&mut rng, Twist::Ignore, &mut bank);
        let duplicated = draw(&mut rng, Twist::Approve, &mut bank);
        let lockout = draw(&mut rng, Twist::Approve, &mut bank);

        // Micropayments from customers with money left at the bank for
        // the whole stream.
        let mut micro: Vec<MicroStream> = Vec::new();
        let stream_max = MICRO_MINOR_MAX * i64::try_from(MICRO_PER_CUSTOMER).unwrap_or(0);
        let mut candidates: Vec<usize> = customers
            .iter()
            .copied()
            .filter(|&c| bank[c] >= stream_max)
            .collect();
        while micro.len() < MICRO_CUSTOMERS && !candidates.is_empty() {
            let customer = candidates.remove(pick(&mut rng, candidates.len()));
            let payments = (0..MICRO_PER_CUSTOMER)
                .map(|_| Micro {
                    shop: pick(&mut rng, SHOPS.len()),
                    amount_minor: price(&mut rng, MICRO_MINOR_MIN, MICRO_MINOR_MAX),
                })
                .collect();
            micro.push(MicroStream { customer, payments });
        }
        Plan {
            seed,
            people,
            purchases,
            crash,
            clone,
            payments,
            cpp_crash,
            rejected,
            expired,
            refund: (refunded, refund_minor),
            duplicated,
            lockout,
            micro,
        }
    }

    /// Rounds of purchases, in order.
    pub fn rounds(&self) -> Vec<Vec<&Purchase>> {
        let n = self
            .purchases
            .iter()
            .map(|p| p.round + 1)
            .max()
            .unwrap_or(0);
        (0..n)
            .map(|r| self.purchases.iter().filter(|p| p.round == r).collect())
            .collect()
    }

    /// True if the payment crosses regions (customer's CPP and merchant's
    /// MPP in different regions).
    pub fn is_international(&self, payment: &Payment) -> bool {
        region_of_processor(self.people[payment.customer].cpp()) != SHOPS[payment.shop].region()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIZE: Size = Size {
        purchases: 12,
        payments: 16,
    };

    #[test]
    fn one_seed_one_day() {
        assert_eq!(Plan::new(7, SIZE), Plan::new(7, SIZE));
        assert_ne!(Plan::new(7, SIZE), Plan::new(8, SIZE));
    }

    #[test]
    fn a_dozen_wallets_and_every_scene() {
        for seed in 0..200 {
            let plan = Plan::new(seed, SIZE);
            assert_eq!(plan.people.len(), 12, "seed {seed}");
            assert_eq!(plan.purchases.len(), SIZE.purchases, "seed {seed}");
            assert_eq!(plan.payments.len(), SIZE.payments, "seed {seed}");
            assert!(plan.payments.iter().any(|p| plan.is_international(p)));
            assert!(plan.payments.iter().any(|p| !plan.is_international(p)));
            let c = &plan.clone;
            assert_ne!(c.first_shop, c.second_shop, "seed {seed}");
            assert!(c.first_minor <= CHEAT_CHARGE_MINOR && c.second_minor <= CHEAT_CHARGE_MINOR);
            // The office can charge the cheat the duplicated value.
            let cheat = &plan.people[c.cheat];
            assert!(
                cheat.office_transfer_minor - cheat.wallet_charge_minor
                    >= c.first_minor.min(c.second_minor)
            );
            assert!(
                plan.refund.1 > 0 && plan.refund.1 <= plan.payments[plan.refund.0].amount_minor
            );
            assert!(plan.crash.amount_minor > 0);
            // Micropayments: several customers, θ crossed several times,
            // something left for the window to settle.
            assert_eq!(plan.micro.len(), MICRO_CUSTOMERS, "seed {seed}");
            let crossings: usize = plan
                .micro
                .iter()
                .map(|s| s.crossings(MICRO_THETA_MINOR))
                .sum();
            assert!(crossings >= MICRO_CUSTOMERS, "seed {seed}: {crossings}");
            assert!(
                plan.micro
                    .iter()
                    .any(|s| s.remainder(MICRO_THETA_MINOR) > 0),
                "seed {seed}"
            );
            assert!(
                plan.micro
                    .iter()
                    .flat_map(|s| &s.payments)
                    .all(|p| (MICRO_MINOR_MIN..=MICRO_MINOR_MAX).contains(&p.amount_minor)),
                "seed {seed}"
            );
        }
    }

    #[test]
    fn no_wallet_is_in_two_purchases_of_one_round_and_no_one_overspends() {
        for seed in 0..200 {
            let plan = Plan::new(seed, SIZE);
            for round in plan.rounds() {
                assert!(round.len() <= PAIRS_AT_ONCE_MAX);
                let mut seen = std::collections::BTreeSet::new();
                for p in round {
                    assert!(seen.insert(p.buyer), "seed {seed}");
                    assert!(seen.insert(p.seller), "seed {seed}");
                }
            }
            let mut wallet: Vec<i64> = plan.people.iter().map(|p| p.wallet_charge_minor).collect();
            for p in plan.purchases.iter().chain([&plan.crash]) {
                wallet[p.buyer] -= p.amount_minor;
                wallet[p.seller] += p.amount_minor;
                assert!(wallet[p.buyer] >= 0, "seed {seed}");
            }
            let mut bank: Vec<i64> = plan
                .people
                .iter()
                .map(|p| p.bank_deposit_minor - p.office_transfer_minor)
                .collect();
            assert!(bank.iter().all(|b| *b >= 0));
            for p in plan
                .payments
                .iter()
                .chain([&plan.duplicated, &plan.lockout])
            {
                bank[p.customer] -= p.amount_minor;
                assert!(bank[p.customer] >= 0, "seed {seed}");
            }
            for s in &plan.micro {
                bank[s.customer] -= s.total_minor();
                assert!(bank[s.customer] >= 0, "seed {seed}");
            }
        }
    }
}
