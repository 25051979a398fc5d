//! The bank against real databases (every store test on SQLite and
//! PostgreSQL via `mpay_sql::testing::for_each_backend`) and, for the
//! interbank protocol, two banks talking real HTTP on loopback.

mod authorization;
mod errors;
mod interbank;
mod limits;
mod store;

use std::sync::Arc;

use mpay_bank::config::AccountPattern;
use mpay_bank::{
    AccountId, ApiToken, Bank, BankConfig, BankIdentity, Caller, Deposit, OpenAccount, PeerBank,
    SchemeRoot,
};
use mpay_identity::Timestamp;
use mpay_money::{Amount, Currency};
use mpay_sql::Db;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

pub const OPERATOR_TOKEN: &str = "operator-token-000000000001";
pub const CPP_TOKEN: &str = "cpp1-token-00000000000000001";
pub const ALICE_TOKEN: &str = "alice-token-0000000000000001";
pub const SHOP_TOKEN: &str = "shop-token-00000000000000001";

pub fn eur(cents: i64) -> Amount {
    Amount::new(cents, Currency::EUR)
}

pub fn id(text: &str) -> AccountId {
    AccountId::parse(text).expect("test account id")
}

pub fn operator() -> Caller {
    Caller::operator("ops").expect("caller")
}

/// A CPP: holds on and pays from customers' accounts, and its own.
pub fn cpp() -> Caller {
    Caller::new(
        "cpp1",
        vec![
            AccountPattern::parse("cust:*").expect("pattern"),
            AccountPattern::parse("cpp:cpp1").expect("pattern"),
        ],
    )
    .expect("caller")
}

pub fn alice() -> Caller {
    Caller::new(
        "alice",
        vec![AccountPattern::parse("cust:alice").expect("pattern")],
    )
    .expect("caller")
}

pub fn shop() -> Caller {
    Caller::new(
        "shop",
        vec![AccountPattern::parse("shop:*").expect("pattern")],
    )
    .expect("caller")
}

/// One scheme root and a seeded RNG for the identities it issues.
pub struct Scheme {
    pub root: SchemeRoot,
    rng: ChaCha20Rng,
}

impl Scheme {
    pub fn new(seed: u64, now: Timestamp) -> Scheme {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let root = SchemeRoot::generate(&mut rng, now);
        Scheme { root, rng }
    }

    pub fn bank(&mut self, now: Timestamp) -> BankIdentity {
        BankIdentity::generate(&self.root, &mut self.rng, now)
    }

    pub fn config(&self, peers: Vec<PeerBank>) -> BankConfig {
        let mut config = BankConfig::new(Currency::EUR, vec![self.root.certificate().clone()]);
        config.peers = peers;
        config.tokens = vec![
            ApiToken::new(OPERATOR_TOKEN, operator()).expect("token"),
            ApiToken::new(CPP_TOKEN, cpp()).expect("token"),
            ApiToken::new(ALICE_TOKEN, alice()).expect("token"),
            ApiToken::new(SHOP_TOKEN, shop()).expect("token"),
        ];
        config
    }
}

/// A bank on `db` with `peers`.
pub async fn open_bank(
    db: Db,
    scheme: &Scheme,
    identity: BankIdentity,
    peers: Vec<PeerBank>,
    seed: u8,
    now: Timestamp,
) -> Arc<Bank> {
    Arc::new(
        Bank::open(db, scheme.config(peers), Some(identity), [seed; 32], now)
            .await
            .expect("bank opens"),
    )
}

/// Opens holder accounts `names` (each `prefix:name`).
pub async fn open_accounts(bank: &Bank, names: &[&str], now: Timestamp) {
    for name in names {
        bank.open_account(
            &operator(),
            &format!("open-{name}"),
            &OpenAccount {
                account: id(name),
                holder: (*name).to_owned(),
                floor: eur(0),
            },
            now,
        )
        .await
        .expect("account opens");
    }
}

/// Deposits `cents` into `account`.
pub async fn deposit(bank: &Bank, account: &str, cents: i64, key: &str, now: Timestamp) {
    bank.deposit(
        &operator(),
        key,
        &Deposit {
            account: id(account),
            amount: eur(cents),
            reference: "cash".into(),
        },
        now,
    )
    .await
    .expect("deposit");
}

/// The balance of `account` in cents.
pub async fn balance(bank: &Bank, account: &str) -> i64 {
    bank.balances()
        .await
        .expect("balances")
        .get(&id(account))
        .map_or(0, |a| a.minor_units())
}

/// A client of a test bank on loopback, where the tests allow a token over
/// plaintext explicitly.
pub fn loopback_client(base: &str) -> mpay_bank::BankClient {
    mpay_bank::BankClient::new(base)
        .expect("client")
        .with_plaintext(mpay_tls::Plaintext::from_flag(true))
}

/// A bare HTTP client for raw requests, with the ring provider installed
/// first (reqwest is built without a default provider).
pub fn raw_http() -> reqwest::Client {
    mpay_tls::install_ring_provider();
    reqwest::Client::new()
}
